#!/usr/bin/env bash
# Installs authwatch in the usual FHS places. DESTDIR stages the install
# (for packaging); PREFIX defaults to /usr.
#
#   cargo build --release --locked
#   sudo ./scripts/install.sh
#   DESTDIR=/tmp/pkg ./scripts/install.sh
#
# An existing /etc/authwatch/authwatch.toml is never overwritten; shipped
# rules are (they are authwatch's, and `rules check` validates them).
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr}"
bin="target/release/authwatch"
[ -x "$bin" ] || { echo "build first: cargo build --release --locked" >&2; exit 1; }

install -d -m 0755 "$DESTDIR$PREFIX/bin" "$DESTDIR/lib/systemd/system" \
  "$DESTDIR/etc/authwatch/rules" "$DESTDIR$PREFIX/share/doc/authwatch" \
  "$DESTDIR$PREFIX/share/man/man1" "$DESTDIR$PREFIX/share/bash-completion/completions" \
  "$DESTDIR$PREFIX/share/zsh/vendor-completions" "$DESTDIR$PREFIX/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$DESTDIR$PREFIX/bin/authwatch"
sed "s#/usr/bin/authwatch#$PREFIX/bin/authwatch#g" systemd/authwatch.service > "$DESTDIR/lib/systemd/system/authwatch.service"
chmod 0644 "$DESTDIR/lib/systemd/system/authwatch.service"
install -m 0644 rules/*.toml "$DESTDIR/etc/authwatch/rules/"
if [ ! -e "$DESTDIR/etc/authwatch/authwatch.toml" ]; then
  install -m 0644 systemd/authwatch.toml "$DESTDIR/etc/authwatch/authwatch.toml"
fi
for doc in README.md SECURITY.md BENCHMARKS.md; do
  [ -f "$doc" ] && install -m 0644 "$doc" "$DESTDIR$PREFIX/share/doc/authwatch/"
done
if "$bin" manpage >/dev/null 2>&1; then
  "$bin" manpage > "$DESTDIR$PREFIX/share/man/man1/authwatch.1"
  "$bin" completions bash > "$DESTDIR$PREFIX/share/bash-completion/completions/authwatch"
  "$bin" completions zsh > "$DESTDIR$PREFIX/share/zsh/vendor-completions/_authwatch"
  "$bin" completions fish > "$DESTDIR$PREFIX/share/fish/vendor_completions.d/authwatch.fish"
fi
echo "installed under ${DESTDIR:-/}; next: edit /etc/authwatch/authwatch.toml, then" >&2
echo "  authwatch rules check --config /etc/authwatch/authwatch.toml && systemctl daemon-reload && systemctl enable --now authwatch" >&2
