#!/usr/bin/env bash
# Runs the whole test suite: unit tests, rule examples, and the
# integration tests against real redis-server processes and real HTTP
# receivers that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh
exec cargo test --locked "$@"
