#!/usr/bin/env bash
# The live benchmarks of `authwatch run` against a real Redis (see
# BENCHMARKS.md). benches/run.sh runs this after the replay benchmark;
# alone:
#
#   benches/live.sh            build, run the four live benchmarks, write OUT/live.md
#
# Settings (environment): SAMPLES (1000 attackers timed), NOISE (10000
# background lines/s), RATE (200000 lines/s), SECS (10), IPS (1000000),
# STARTUP_RUNS (20), RULES (100), STATE_DIR (the daemon's state directory;
# by default on the same disk as OUT), OUT (target/bench).
#
# What it does (the harness is examples/live_bench.rs; each step starts its
# own redis-server on a free loopback port and its own daemon, started as
# systemd would, with NOTIFY_SOCKET):
#   1. latency: SAMPLES attackers, one every 10 ms, each a fresh address
#      writing 50 failed passwords (the shipped sshd rule's threshold) among
#      NOISE lines/s of other traffic; the time from the write(2) of each
#      50th line to the block's PUBLISH on authwatch:events: p50/p99/max;
#   2. throughput: RATE lines/s for SECS seconds, 100 attackers a second
#      among them: the largest lag, how soon after the last append every
#      line is processed, the block latency under that load;
#   3. distinct: IPS addresses, one failure each, within one window: peak
#      RSS (VmHWM), tracked keys; once IPv4 only (IPS keys) and once with
#      every 5th address IPv6 (counted per address and per /64: more keys
#      than the detector's cap of a million, so it evicts);
#   4. startup: spawn → READY=1, with the shipped rules and with RULES
#      variants of them (each with its examples, which the daemon runs).
# Each step checks what the daemon did against what was appended (every
# attacker blocked, its key existing, nothing else blocked, every line
# processed, the keys accounted for) and the script fails if one is wrong.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SAMPLES=${SAMPLES:-1000}
NOISE=${NOISE:-10000}
RATE=${RATE:-200000}
SECS=${SECS:-10}
IPS=${IPS:-1000000}
STARTUP_RUNS=${STARTUP_RUNS:-20}
RULES=${RULES:-100}
OUT=${OUT:-$ROOT/target/bench}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

say() { printf '%s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing redis-server"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1 || true
    fi
    command -v redis-server >/dev/null 2>&1 || { say "redis-server is required: apt-get install redis-server"; exit 2; }
fi

say "== build"
cargo build --release --bin authwatch --example live_bench >&2
LB=$TARGET/release/examples/live_bench
BIN=$TARGET/release/authwatch
mkdir -p "$OUT"
STATE_ARGS=()
[ -n "${STATE_DIR:-}" ] && STATE_ARGS=(--state-dir "$STATE_DIR")

FAILED=0
ROWS=()
step() {
    local name=$1
    shift
    say "== live: $name (load average $(cut -d' ' -f1 /proc/loadavg))"
    local out
    if out=$("$LB" --bin "$BIN" --out "$OUT/live-$name" "${STATE_ARGS[@]}" "$@"); then
        :
    else
        FAILED=1
        out="$out"$'\n'"- $name: FAILED (exit $?; see $OUT/live-$name)"
    fi
    printf '%s\n' "$out" >&2
    ROWS+=("$out")
}

step latency latency --samples "$SAMPLES" --noise "$NOISE"
step throughput throughput --rate "$RATE" --secs "$SECS"
step distinct distinct --ips "$IPS"
step distinct-v6 distinct --ips "$IPS" --ipv6-every 5
step startup startup --rules "$RULES" --runs "$STARTUP_RUNS"

{
    echo "# authwatch live benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- machine: $(lscpu | awk -F': *' '/Model name/ { print $2; exit }'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); $(redis-server --version | cut -d' ' -f1-3)"
    echo "- state directory: ${STATE_DIR:-on $(df --output=fstype "$OUT" | tail -1) under $OUT}"
    echo
    printf '%s\n' "${ROWS[@]}"
} > "$OUT/live.md"
cat "$OUT/live.md"

if [ "$FAILED" != 0 ]; then
    say "FAILED: a live benchmark's check failed (see above)"
    exit 1
fi
