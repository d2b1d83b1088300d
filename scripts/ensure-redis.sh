#!/usr/bin/env bash
# Makes sure `redis-server` is installed: the tests start real Redis
# servers on free loopback ports, and the dev daemon talks to one.
# On Debian/Ubuntu it installs the `redis-server` package when missing.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server is missing; installing Debian's redis-server package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts a system Redis on 6379; authwatch's tests and dev
  # run use their own servers, so leave the system one as the package set it.
else
  echo "no apt-get here: install redis-server (Redis >= 6.2) with your package manager" >&2
  exit 1
fi
command -v redis-server >/dev/null
