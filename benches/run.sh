#!/usr/bin/env bash
# The whole-process benchmarks (see BENCHMARKS.md): `authwatch replay`,
# then the live daemon (benches/live.sh).
#
#   benches/run.sh             build, generate the corpora, check, time, compare;
#                              then the live benchmarks against a real Redis
#   LIVE=0 benches/run.sh      the replay benchmark only
#   PROFILE=1 benches/run.sh   also count instructions per line with callgrind
#
# Settings (environment): LINES (1000000), SEED (42), RUNS (5 timed runs
# per corpus), PEER_RUNS (1 for fail2ban-regex, which is slow), CPU (the
# one core everything runs on, 0), OUT (target/bench).
#
# What it does, in order:
#   1. builds the release binary and the corpus generator;
#   2. generates the sshd, JSON, access-log and 1M-distinct-address corpora
#      (deterministic: same LINES and SEED, same bytes) unless they exist;
#   3. replays each once under /usr/bin/time -v for the peak RSS, and
#      compares its decisions with the ground truth: a fast wrong answer
#      does not count, and the script fails;
#   4. times each replay with hyperfine on one core (taskset);
#   5. times the peers on the same sshd file: fail2ban-regex with its sshd
#      filter (when Debian's fail2ban is installable) and ripgrep extracting
#      time and address with one regex;
#   6. writes OUT/results.md: the machine, the table, the checks;
#   7. unless LIVE=0, runs benches/live.sh (latency, 200k lines/s, 1M
#      addresses, start-up; its settings are in that script), which writes
#      OUT/live.md.
#
# Numbers taken while other processes compete for the cores are noisy:
# the table shows the load average, and CPU time (user + sys) next to the
# wall time. For comparing two builds, prefer PROFILE=1's instruction
# counts, which do not depend on the load.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LINES=${LINES:-1000000}
SEED=${SEED:-42}
RUNS=${RUNS:-5}
PEER_RUNS=${PEER_RUNS:-1}
CPU=${CPU:-0}
OUT=${OUT:-$ROOT/target/bench}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# The corpora write year-less syslog times in UTC; the replay must read
# them in UTC too.
export TZ=UTC

say() { printf '%s\n' "$*" >&2; }

# Installs a Debian package when its command is missing and we can.
ensure() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing $pkg (for $cmd)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 || true
    fi
    command -v "$cmd" >/dev/null 2>&1
}

ensure hyperfine hyperfine || { say "hyperfine is required: apt-get install hyperfine"; exit 2; }
ensure taskset util-linux || { say "taskset is required"; exit 2; }
if [ ! -x /usr/bin/time ]; then
    ensure /usr/bin/time time || { say "GNU time is required: apt-get install time"; exit 2; }
fi
HAVE_F2B=0; ensure fail2ban-regex fail2ban && HAVE_F2B=1
HAVE_RG=0; ensure rg ripgrep && HAVE_RG=1

say "== build"
cargo build --release --bin authwatch --example gen_corpus >&2
BIN=$TARGET/release/authwatch
GEN=$TARGET/release/examples/gen_corpus

mkdir -p "$OUT/corpus" "$OUT/state"
CORPUS=$OUT/corpus
CFG=$OUT/authwatch.toml
# The default allowlist (loopback), which the ground truth assumes.
cat > "$CFG" <<EOF
rules_dir = "$ROOT/rules"
state_dir = "$OUT/state"
EOF

say "== corpora ($LINES lines, seed $SEED)"
for kind in sshd json access distinct; do
    stats=$CORPUS/$kind.stats
    if [ -f "$stats" ] && grep -qx "lines $LINES" "$stats" && grep -qx "seed $SEED" "$stats" \
        && [ "$stats" -nt "$GEN" ]; then
        say "$kind: kept"
    else
        "$GEN" --kind "$kind" --lines "$LINES" --seed "$SEED" --out "$CORPUS" 2>/dev/null
        say "$kind: generated"
    fi
done

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
# One field of hyperfine's JSON export (first result).
hf() { grep -o "\"$1\": *[0-9.e+-]*" "$2" | head -1 | sed 's/.*: *//'; }
load() { cut -d' ' -f1 /proc/loadavg; }

FAILED=0
ROWS=()
CHECKS=()

replay() {
    local kind=$1 log=$CORPUS/$1.log
    local truth=$CORPUS/$1.truth.jsonl
    say "== $kind: correctness and peak RSS"
    /usr/bin/time -v -o "$OUT/$kind.time" taskset -c "$CPU" "$BIN" replay --config "$CFG" --json "$log" \
        > "$OUT/$kind.decisions" 2> "$OUT/$kind.summary"
    local rss_kb
    rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$OUT/$kind.time")
    local got want missing extra verdict
    sort "$OUT/$kind.decisions" > "$OUT/$kind.decisions.sorted"
    sort "$truth" > "$OUT/$kind.truth.sorted"
    got=$(wc -l < "$OUT/$kind.decisions")
    want=$(wc -l < "$truth")
    missing=$(comm -13 "$OUT/$kind.decisions.sorted" "$OUT/$kind.truth.sorted" | wc -l)
    extra=$(comm -23 "$OUT/$kind.decisions.sorted" "$OUT/$kind.truth.sorted" | wc -l)
    if [ "$missing" = 0 ] && [ "$extra" = 0 ]; then
        verdict="exact ($got of $want decisions)"
    else
        verdict="WRONG: $missing missing, $extra extra of $want"
        FAILED=1
    fi
    CHECKS+=("| $kind | $want | $got | $missing | $extra | $verdict |")
    say "$kind: $verdict; peak RSS $((rss_kb / 1024)) MiB"

    say "== $kind: timing (load average $(load))"
    local before after
    before=$(load)
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/$kind.hyperfine.json" \
        "taskset -c $CPU $BIN replay --config $CFG --json $log" >&2
    after=$(load)
    local mean sd user sys bytes
    mean=$(hf mean "$OUT/$kind.hyperfine.json")
    sd=$(hf stddev "$OUT/$kind.hyperfine.json")
    user=$(hf user "$OUT/$kind.hyperfine.json")
    sys=$(hf system "$OUT/$kind.hyperfine.json")
    bytes=$(stat_of bytes "$CORPUS/$kind.stats")
    ROWS+=("$(awk -v k="authwatch replay: $kind" -v l="$LINES" -v b="$bytes" -v m="$mean" -v sd="$sd" \
        -v u="$user" -v s="$sys" -v r="$rss_kb" -v la="$before/$after" 'BEGIN {
        printf "| %s | %d | %.0f | %.3f ± %.3f | %.2fM | %.3f | %.2fM | %.1f MiB | %s |",
            k, l, b / 1e6, m, sd, l / m / 1e6, u + s, l / (u + s) / 1e6, r / 1024, la }')")
}

peer() {
    local name=$1 cmd=$2 json=$OUT/peer-$3.hyperfine.json
    say "== peer: $name (load average $(load))"
    local before after
    before=$(load)
    hyperfine --warmup 0 --runs "$PEER_RUNS" --export-json "$json" "$cmd" >&2
    after=$(load)
    local mean sd user sys bytes rss_kb
    mean=$(hf mean "$json")
    sd=$(hf stddev "$json")
    user=$(hf user "$json")
    sys=$(hf system "$json")
    bytes=$(stat_of bytes "$CORPUS/sshd.stats")
    /usr/bin/time -v -o "$OUT/peer-$3.time" sh -c "$cmd" > /dev/null 2>&1 || true
    rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$OUT/peer-$3.time")
    ROWS+=("$(awk -v k="$name" -v l="$LINES" -v b="$bytes" -v m="$mean" -v sd="$sd" \
        -v u="$user" -v s="$sys" -v r="$rss_kb" -v la="$before/$after" 'BEGIN {
        printf "| %s | %d | %.0f | %.3f ± %.3f | %.2fM | %.3f | %.2fM | %.1f MiB | %s |",
            k, l, b / 1e6, m, sd, l / m / 1e6, u + s, l / (u + s) / 1e6, r / 1024, la }')")
}

replay sshd
replay json
replay access
replay distinct

SSHD_LOG=$CORPUS/sshd.log
if [ "$HAVE_F2B" = 1 ]; then
    # fail2ban-regex matches and extracts, it does not count windows: it is
    # the lower bound of what fail2ban's own filter costs per line.
    fail2ban-regex -r --print-no-missed --print-no-ignored "$SSHD_LOG" sshd > "$OUT/fail2ban-regex.out" 2>&1 || true
    peer "fail2ban-regex $(fail2ban-regex -V 2>/dev/null | head -1) (sshd filter)" \
        "taskset -c $CPU fail2ban-regex -r --print-no-missed --print-no-ignored $SSHD_LOG sshd" f2b
else
    say "fail2ban-regex not available: its row is left out"
fi
if [ "$HAVE_RG" = 1 ]; then
    # One regex that finds the failure lines of all three sshd patterns and
    # prints the time and the address: the raw cost of a regex scan.
    RG_RE='^(\S+(?: +\d+ [0-9:.]+)?) \S+ sshd(?:-session|-auth)?\[\d+\]: (?:message repeated \d+ times: \[ )?(?:Failed \S+ for .* from|Invalid user .* from|(?:Connection closed by|Connection reset by|Disconnected from) (?:authenticating|invalid) user .*) (\S+) port \d+'
    rg --no-config -j1 --no-filename -o -r '$1 $2' "$RG_RE" "$SSHD_LOG" > "$OUT/ripgrep.out" || true
    peer "ripgrep $(rg --version | head -1 | cut -d' ' -f2) (-o, time and address)" \
        "taskset -c $CPU rg --no-config -j1 --no-filename -o -r '\$1 \$2' '$RG_RE' $SSHD_LOG" rg
else
    say "ripgrep not available: its row is left out"
fi

if [ "${PROFILE:-0}" = 1 ]; then
    say "== instruction counts (callgrind, first 200,000 lines)"
    for kind in sshd json; do
        head -n 200000 "$CORPUS/$kind.log" > "$OUT/$kind.200k.log"
        touch -r "$CORPUS/$kind.log" "$OUT/$kind.200k.log"
        valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$kind.out" \
            "$BIN" replay --config "$CFG" --json "$OUT/$kind.200k.log" > /dev/null 2> "$OUT/callgrind.$kind.err"
        ir=$(grep -o 'refs: *[0-9,]*' "$OUT/callgrind.$kind.err" | tr -dc 0-9)
        say "$kind: $ir instructions, $((ir / 200000)) per line (startup included)"
        callgrind_annotate --inclusive=yes "$OUT/callgrind.$kind.out" 2>/dev/null \
            | grep -E '^ *[0-9,]+ \(' | head -40 > "$OUT/callgrind.$kind.top"
    done
fi

{
    echo "# authwatch replay benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- machine: $(lscpu | awk -F': *' '/Model name/ { print $2; exit }'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "- $(rustc --version), release profile of Cargo.toml; one core: taskset -c $CPU; TZ=UTC"
    echo "- corpora: $LINES lines each, seed $SEED, in $CORPUS"
    echo
    echo "| run | lines | MB | wall s (mean ± sd, $RUNS runs) | lines/s (wall) | CPU s (user+sys) | lines/s (CPU) | peak RSS | load avg before/after |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Decisions against the ground truth (sorted, compared line by line):"
    echo
    echo "| corpus | truth | replay | missing | extra | verdict |"
    echo "| --- | ---: | ---: | ---: | ---: | --- |"
    printf '%s\n' "${CHECKS[@]}"
    if [ -f "$OUT/fail2ban-regex.out" ]; then
        echo
        echo "fail2ban-regex on the sshd corpus: $(grep -E '^Lines:' "$OUT/fail2ban-regex.out" | head -1)"
    fi
    if [ -f "$OUT/ripgrep.out" ]; then
        echo "ripgrep on the sshd corpus: $(wc -l < "$OUT/ripgrep.out") lines matched"
    fi
    echo "authwatch on the sshd corpus: $(grep -E '^matched per rule' "$OUT/sshd.summary")"
} > "$OUT/results.md"
cat "$OUT/results.md"

if [ "$FAILED" != 0 ]; then
    say "FAILED: a replay's decisions differ from the ground truth (see $OUT/*.decisions)"
    exit 1
fi

if [ "${LIVE:-1}" != 0 ]; then
    OUT=$OUT "$ROOT/benches/live.sh"
fi
