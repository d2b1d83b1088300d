#!/usr/bin/env bash
# Supply chain check: cargo-deny (advisories, licences, bans, sources) with
# the policy in deny.toml, against an offline snapshot of the RustSec
# advisory database. The machines reach crates.io but not GitHub, so
# cargo-deny cannot fetch the database itself.
#
#   scripts/deny.sh                 check against ../shared/advisory-db
#   AUTHWATCH_ADVISORY_DB=DIR scripts/deny.sh
#                                   check against another copy of the
#                                   database (e.g. one with a planted
#                                   advisory: README "Supply chain")
#   scripts/deny.sh check advisories    extra arguments replace `check`
#
# cargo-deny is installed into $HOME/.cargo/bin when missing (5-6 min on
# 2 cores); that directory persists on the machine, so later runs skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# The version deny.toml was written for; newer ones may rename keys.
DENY_VERSION="0.20.2"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo deny --version >/dev/null 2>&1; then
  echo "deny.sh: cargo-deny is missing; installing $DENY_VERSION into $HOME/.cargo/bin (takes minutes once)" >&2
  cargo install cargo-deny --locked --version "$DENY_VERSION" --root "$HOME/.cargo" >&2
fi

src="${AUTHWATCH_ADVISORY_DB:-$root/../shared/advisory-db}"
if [ ! -d "$src/crates" ]; then
  echo "deny.sh: no advisory database at $src (expected a RustSec advisory-db checkout with crates/)" >&2
  echo "deny.sh: set AUTHWATCH_ADVISORY_DB to its directory" >&2
  exit 1
fi
src="$(cd "$src" && pwd)"

# cargo-deny looks for the database of its default URL in
# <db-path>/advisory-db-3157b0e258782691 and reads it through git, so the
# plain-file snapshot becomes a one-commit repository there. It is rebuilt
# on every run (about a second): a stale or planted copy never lingers.
dbs="$root/target/deny/advisory-dbs"
db="$dbs/advisory-db-3157b0e258782691"
rm -rf "$db"
mkdir -p "$dbs"
cp -R "$src" "$db"
# shared/ is laid read-only; the copy must be writable to hold .git.
chmod -R u+w "$db"
rm -rf "$db/.git"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.name=authwatch-ci -c user.email=ci@authwatch.invalid \
  -c commit.gpgsign=false commit -q -m "advisory-db snapshot from $src"

# cargo-deny judges freshness by when the checkout was made (now), which
# says nothing about the snapshot's age; report the newest advisory instead.
newest="$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$db/crates" "$db/rust" 2>/dev/null \
  | sed -E 's/.*"(.*)"/\1/' | sort | tail -n 1 || true)"
count="$(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l)"
echo "deny.sh: advisory database $src: $count advisories, newest dated ${newest:-unknown}" >&2
if [ -n "$newest" ]; then
  age_days=$(( ($(date +%s) - $(date -d "$newest" +%s)) / 86400 ))
  if [ "$age_days" -gt 180 ]; then
    echo "deny.sh: warning: the newest advisory is $age_days days old; refresh the snapshot (README \"Supply chain\")" >&2
  fi
fi

# cargo-deny reads the dependency graph for every target platform, offline:
# on a fresh machine the crates of other platforms (windows-sys, ...) and
# optional ones are not yet in ~/.cargo/registry, so fetch them first
# (crates.io is reachable; a no-op once they are there).
cargo fetch --locked --manifest-path "$root/Cargo.toml" >&2

if [ "$#" -eq 0 ]; then set -- check; fi
export AUTHWATCH_DENY_DB_ROOT="$dbs"
exec cargo deny --offline --locked --config "$root/deny.toml" --manifest-path "$root/Cargo.toml" "$@"
