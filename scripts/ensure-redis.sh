#!/usr/bin/env bash
# Makes sure what the tests run for real is installed: `redis-server`
# (the tests start real Redis servers on free loopback ports, and the dev
# daemon talks to one) and `systemd-journal-remote` (the journald tests
# write real journal files with it). On Debian/Ubuntu it installs the
# packages when missing.
set -euo pipefail
need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
[ -x /lib/systemd/systemd-journal-remote ] || [ -x /usr/lib/systemd/systemd-journal-remote ] || need="$need systemd-journal-remote"
if [ -z "$need" ]; then
  exit 0
fi
echo "installing Debian packages:$need" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
  # The package starts a system Redis on 6379; authwatch's tests and dev
  # run use their own servers, so leave the system one as the package set it.
else
  echo "no apt-get here: install redis-server (Redis >= 6.2) with your package manager" >&2
  exit 1
fi
command -v redis-server >/dev/null
