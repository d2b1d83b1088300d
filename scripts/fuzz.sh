#!/usr/bin/env bash
# Fuzzes the parsers that read log lines, times, JSON, configuration and
# rule files (fuzz/fuzz_targets/*.rs) with cargo-fuzz and libFuzzer.
#
#   scripts/fuzz.sh                 every target for 60 s
#   scripts/fuzz.sh 600             every target for 10 min
#   scripts/fuzz.sh 60 json_scan    only these targets
#
# Environment:
#   AUTHWATCH_FUZZ_TARGET_DIR  where the nightly build goes (default
#                              target/fuzz); the corpus grows under it in
#                              corpus/<target>, crashes land in
#                              artifacts/<target>
#   AUTHWATCH_FUZZ_SANITIZER   none (default: the code under test is safe
#                              Rust, and runs twice as fast without ASan)
#                              or address
#
# Every committed crash input in fuzz/regressions/<target>/ is replayed
# first, as part of the corpus. A crash makes the script exit 1 after the
# other targets ran, naming the input (a build failure exits 2): reproduce
# it with  target/fuzz/x86_64-unknown-linux-gnu/release/TARGET FILE
# then fix it, and keep the input in fuzz/regressions/TARGET/ with a test
# in tests/limits.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

secs="${1:-60}"
shift || true
all_targets=(config rules_compile match_line json_scan time lines proxy)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing; installing it into $HOME/.cargo/bin (about 2 min once)" >&2
  cargo install cargo-fuzz --locked --root "$HOME/.cargo" >&2
fi

tdir="${AUTHWATCH_FUZZ_TARGET_DIR:-$root/target/fuzz}"
sanitizer="${AUTHWATCH_FUZZ_SANITIZER:-none}"
mkdir -p "$tdir"
tdir="$(cd "$tdir" && pwd)"

# The fuzz crate has its own workspace and lockfile. Start that lockfile
# from the main crate's, so the fuzzed dependencies are the versions the
# daemon ships (and cargo-deny checked); cargo adds only the fuzzing crates.
cp "$root/Cargo.lock" "$root/fuzz/Cargo.lock"

# Seeds, rebuilt from the repository on every run: the shipped rules and
# their example lines, the example configuration.
seeds="$tdir/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"/{config,rules_compile,match_line,json_scan,time,lines,proxy}
cp "$root"/systemd/*.toml "$seeds/config/" 2>/dev/null || true
cp "$root"/rules/*.toml "$seeds/rules_compile/"
# `line = '…'` (TOML literal strings) in the rule files' examples.
n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%s' "$line" >"$seeds/match_line/example-$n"
  printf '%s\n%s\n' "$line" "$line" >"$seeds/lines/example-$n"
  case "$line" in
    '{'*) printf '\000%s' "$line" >"$seeds/json_scan/example-$n" ;;
  esac
done < <(sed -n "s/^[[:space:]]*line = '\(.*\)'[[:space:]]*$/\1/p" "$root"/rules/*.toml)
# time: zone, offset (4 bytes), reference (8 bytes), then the text.
header='\000\000\000\000\000\000\000\000\000\000\000\000\000'
for t in 'Mar  5 06:25:01' 'Dec 31 23:59:59.999999' '2024-05-01T12:34:56.123456+02:00' \
  '2024-05-01T12:34:56+0200' '10/Oct/2024:13:55:36 +0000' '10/Oct/2024 13:55:36' \
  '1733230993' '1733230993123' '1733230993.5' \
  'Mar  5 06:25:01 web1 sshd[1234]: Failed password' \
  '2024-05-01T12:34:56Z web1 sshd-session[1]: x'; do
  n=$((n + 1))
  printf "$header%s" "$t" >"$seeds/time/seed-$n"
done

# proxy: the peer selector (one byte), then an X-Forwarded-For chain.
for c in '10.66.66.66, 203.0.113.7, 10.0.0.9' '-' 'fd66::66, [2001:db8::7]:443' \
  '203.0.113.7:51234' 'unknown, 10.0.0.1' '10.0.0.1,10.0.0.2,10.0.0.3'; do
  n=$((n + 1))
  printf '\000%s' "$c" >"$seeds/proxy/seed-$n"
done

max_len() {
  case "$1" in
    config | rules_compile) echo 16384 ;;
    time) echo 512 ;;
    *) echo 8192 ;;
  esac
}

echo "fuzz.sh: building the fuzz targets (nightly, sanitizer $sanitizer) into $tdir" >&2
build_start=$(date +%s)
if ! (cd "$root/fuzz" && cargo +nightly fuzz build -s "$sanitizer" --target-dir "$tdir") >&2; then
  echo "fuzz.sh: the fuzz targets do not build" >&2
  exit 2
fi
echo "fuzz.sh: built in $(($(date +%s) - build_start)) s" >&2
bindir="$tdir/x86_64-unknown-linux-gnu/release"

# The targets run as built above (not through `cargo fuzz run`, which
# would rebuild if a source file changed in the meantime).
failed=()
for t in "${targets[@]}"; do
  corpus="$tdir/corpus/$t"
  artifacts="$tdir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus" "$seeds/$t")
  if [ -d "$root/fuzz/regressions/$t" ]; then dirs+=("$root/fuzz/regressions/$t"); fi
  echo "fuzz.sh: $t for ${secs}s" >&2
  log="$tdir/$t.log"
  if "$bindir/$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "${dirs[@]}" >"$log" 2>&1; then
    runs=$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz.sh: $t ok: $runs runs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) inputs" >&2
  else
    echo "fuzz.sh: $t FAILED; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}; inputs in $tdir/artifacts/" >&2
  exit 1
fi
