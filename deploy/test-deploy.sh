#!/usr/bin/env bash
# make test-deploy: the Docker image, the systemd unit and the TLS proxy, run for real
# (tests/deploy/; the manual: Development, "Deployment tests", and the Operations pages).
# As root on Debian: installs what the tests use with apt-get (no service of those packages
# is started), holds a machine-wide lock (one run at a time: the test bridge and cgroup
# names are fixed), then runs the tests, which take down all they start on every way out.
#   deploy/test-deploy.sh [pytest args]      e.g. -x, -k docker, -k "systemd or proxy"
# TEST_DEPLOY_KEEP=1 keeps build/test-deploy/ (rootfs, logs) to look into after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test-deploy: run as root (it starts dockerd and systemd-nspawn, mounts, a bridge)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /usr/bin/docker ] || need+=(docker.io)
[ -x /usr/bin/docker-compose ] || need+=(docker-compose)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v nginx >/dev/null || need+=(nginx)
command -v openssl >/dev/null || need+=(openssl)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
    # Debian starts a service when it installs one unless policy-rc.d says no: a dockerd
    # with the host's network and an nginx on port 80 are not wanted here.
    policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
fi
exec 9>/run/lock/folderd-test-deploy.lock
if ! flock -w 1200 9; then
    echo "test-deploy: another run holds /run/lock/folderd-test-deploy.lock" >&2
    exit 1
fi
VENV=${VENV:-.venv}
where=(tests/deploy)
for arg in "$@"; do
    case "$arg" in tests/*) where=() ;; esac  # a test file or test named: only that
done
# exec: a SIGTERM for this run reaches pytest, whose fixtures then take everything down.
# One process (no xdist): the parts share one work folder, one Debian tree, one lock.
TEST_DEPLOY=1 exec "$VENV/bin/python" -m pytest "${where[@]}" -p no:cacheprovider -p no:xdist \
    -ra "$@"
