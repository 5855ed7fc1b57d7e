#!/usr/bin/env bash
# Install folderd as a systemd service (run as root from a checkout; safe to run again to
# upgrade: it never overwrites your settings, your pipeline config or your data).
#   sudo deploy/install.sh            # install or upgrade
#   deploy/install.sh --dry-run       # print what it would do, change nothing
# What it does:
#   - creates the `folderd` system user and group (no login, home /var/lib/folderd)
#   - copies the code to /opt/folderd and sets up its virtualenv with `run.sh setup`
#   - creates /var/lib/folderd/watch_dir/{unprocessed,underprocess,processed,failed} and
#     /var/lib/folderd/results, owned by folderd (unprocessed/ is group-writable: add the
#     users who drop files, e.g. rsync's, to the folderd group)
#   - creates /etc/folderd/folderd.env from deploy/folderd.env.example and
#     /etc/folderd/pipeline_config.json from pipeline_config.json, if they do not exist
#   - installs /etc/systemd/system/folderd.service, reloads systemd, and restarts the
#     service if it was running (an upgrade)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/folderd
STATE=/var/lib/folderd
ETC=/etc/folderd
UNIT=/etc/systemd/system/folderd.service
USER_NAME=folderd
DRY_RUN=0

for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option: $arg (--dry-run, --help)" >&2; exit 2 ;;
    esac
done

# Run a command, or only show it with --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

note() { printf '%s\n' "$*"; }

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo $0), or with --dry-run to see what it would do" >&2
    exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: folderd needs python3 >= 3.11 on PATH" >&2
    exit 1
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "install.sh: python3 cannot create virtualenvs: apt-get install python3-venv" >&2
    exit 1
fi

# 1. The user the service runs as.
if getent passwd "$USER_NAME" >/dev/null; then
    note "user $USER_NAME exists"
else
    run useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "folderd daemon" "$USER_NAME"
fi

# 2. The code, owned by root and read-only to the service, and its virtualenv.
if [ "$SRC" != "$PREFIX" ]; then
    run install -d -m 0755 "$PREFIX"
    # Everything but history, the checkout's own venv, queue and results, caches and tests.
    if [ "$DRY_RUN" = 1 ]; then
        note "+ copy $SRC to $PREFIX (without .git .venv watch_dir results tests caches)"
    else
        tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./watch_dir \
            --exclude=./results --exclude=./tests --exclude=./.ci --exclude=./bench/out \
            --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
            --exclude=.hypothesis -cf - . | tar -C "$PREFIX" --no-same-owner -xf -
    fi
fi
run env PYTHON=python3 "$PREFIX/run.sh" setup

# 3. The queue and the results.
run install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$STATE"
run install -d -o "$USER_NAME" -g "$USER_NAME" -m 2750 "$STATE/watch_dir" "$STATE/results" \
    "$STATE/watch_dir/underprocess" "$STATE/watch_dir/processed" "$STATE/watch_dir/failed"
run install -d -o "$USER_NAME" -g "$USER_NAME" -m 2770 "$STATE/watch_dir/unprocessed"

# 4. Settings and pipeline config: created once, then they are the admin's.
run install -d -o root -g "$USER_NAME" -m 0750 "$ETC"
if [ -e "$ETC/folderd.env" ]; then
    note "$ETC/folderd.env exists: kept (compare with $PREFIX/deploy/folderd.env.example)"
else
    # 0640: it may hold FOLDERD_TOKEN.
    run install -o root -g "$USER_NAME" -m 0640 "$SRC/deploy/folderd.env.example" \
        "$ETC/folderd.env"
fi
if [ -e "$ETC/pipeline_config.json" ]; then
    note "$ETC/pipeline_config.json exists: kept"
else
    run install -o root -g "$USER_NAME" -m 0640 "$SRC/pipeline_config.json" \
        "$ETC/pipeline_config.json"
fi

# 5. The unit.
run install -m 0644 "$SRC/deploy/folderd.service" "$UNIT"
if [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
    run systemctl try-restart folderd.service  # an upgrade: restart only if it was running
    note "installed. Start it now and at boot with:  systemctl enable --now folderd"
    note "then:  systemctl status folderd   journalctl -u folderd -f   curl -s 127.0.0.1:8000/health"
else
    note "installed, but systemd is not running on this machine (a container?): the unit"
    note "will start on a machine that boots with systemd; in containers use the Dockerfile."
fi
