#!/usr/bin/env bash
# Runs the daemon on a working default, for trying authwatch out:
# a private redis-server on 127.0.0.1:6390, log files under target/dev/log,
# the shipped rules, and a webhook-less configuration. Ctrl-C stops it.
#
# Try it from another terminal:
#   for i in $(seq 50); do echo "$(date '+%b %e %H:%M:%S') demo sshd[4242]: Failed password for root from 203.0.113.7 port $((40000+i)) ssh2" >> target/dev/log/auth.log; done
#   cargo run -q -- blocks list --config target/dev/authwatch.toml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh
dev="$PWD/target/dev"
mkdir -p "$dev/log/api" "$dev/state" "$dev/redis"
touch "$dev/log/auth.log" "$dev/log/api/app.log" "$dev/log/access.log"
port=6390
if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dev/redis" --save "" --appendonly no \
    --daemonize yes --pidfile "$dev/redis/redis.pid" --logfile "$dev/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
cat > "$dev/authwatch.toml" <<TOML
# Written by scripts/dev-run.sh: a local trial configuration.
rules_dir = "$PWD/rules"
state_dir = "$dev/state"
allowlist = ["127.0.0.0/8", "::1/128"]
# Behind a reverse proxy whose access log carries X-Forwarded-For (nginx
# "main"): the proxies whose entries are believed; each is allowlisted.
# trusted_proxies = ["10.0.0.0/8"]

[redis]
url = "redis://127.0.0.1:$port/0"
key_prefix = "authwatch:"

[[source]]
name = "sshd"
path = "$dev/log/auth.log"

[[source]]
name = "api"
path = "$dev/log/api/*.log"

[[source]]
name = "access"
path = "$dev/log/access.log"
TOML
echo "authwatch: config $dev/authwatch.toml; append failure lines to $dev/log/auth.log (see the top of this script)" >&2
cargo build --release --locked -q
# authwatch refuses to run as root without being told: a trial run as
# root (a fresh VM, a container) is told here.
allow_root=""
if [ "$(id -u)" -eq 0 ]; then allow_root="--allow-root"; fi
exec target/release/authwatch run --config "$dev/authwatch.toml" $allow_root
