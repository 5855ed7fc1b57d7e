#!/usr/bin/env bash
# folderd's verbs, one implementation: the Makefile and the Dockerfile call this script.
#   ./run.sh run [flags]        set up, then start the daemon + dashboard on ./watch_dir
#   ./run.sh test [pytest args] set up (dev tools too), then run every test
#   ./run.sh test-deploy [args] as root: the Docker image, the systemd unit and the TLS proxy
#                               run for real (deploy/test-deploy.sh; apt packages, minutes)
#   ./run.sh test-config [FILE] run the pipeline tests declared beside the config (main.py --test)
#   ./run.sh run-file FILE      process one file, print its summary as JSON
#   ./run.sh drain              recover, process everything queued, exit
#   ./run.sh lint               ruff check + ruff format --check + mypy + import contracts
#   ./run.sh docs               build the manual (docs/) strictly into build/site/
#   ./run.sh docs-serve         serve the manual with live reload on 127.0.0.1:8001
#   ./run.sh sample [N]         drop N realistic sample logs into watch_dir/unprocessed/
#   ./run.sh bench              run the benchmarks in bench/
#   ./run.sh recipe NAME [args] run a worked example of examples/ (docs/recipes/):
#                               elections, s3-mirror, voters; its files under build/recipes/NAME/
#   ./run.sh setup              only create/refresh the virtualenv (Dockerfile, deploy/install.sh)
#   ./run.sh clean              remove the virtualenv, caches and the default queue's contents
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Create the virtualenv and (re)install when a requirements file is newer than the last install.
setup() {
    local req=$1 stamp="$VENV/.installed-$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$req" -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        touch "$stamp"
    fi
}

# A recipe: its generator's samples into build/recipes/NAME/watch_dir, drained by folderd
# with the recipe's config, then what came out. `args` go to the generator.
recipe() {
    local name=${1:?usage: run.sh recipe elections|s3-mirror|voters [generator args]}
    shift
    local dir=build/recipes/$name py="$VENV/bin/python"
    local folderd=("$py" main.py --drain --no-dashboard --config "examples/$name/pipeline_config.json"
                   --watch-dir "$dir/watch_dir" --results-dir "$dir/results")
    mkdir -p "$dir/results"
    case "$name" in
        elections)
            export ELECTIONS_DB=${ELECTIONS_DB:-sqlite:///$dir/elections.sqlite3}
            "$py" -m examples.elections.generate --out "$dir/watch_dir/unprocessed" "$@"
            "${folderd[@]}" --skip-duplicates
            "$py" -m examples.elections.totals ;;
        s3-mirror)
            : "${MIRROR_BUCKET:?set MIRROR_BUCKET, S3_ENDPOINT and AWS credentials (docs/recipes/s3-mirror.md)}"
            "$py" examples/s3-mirror/bucket.py create
            "$py" examples/s3-mirror/generate.py --out "$dir/watch_dir/unprocessed" "$@" >/dev/null
            "${folderd[@]}" --empty-files process
            "$py" examples/s3-mirror/bucket.py list ;;
        s3-mirror-source)  # the same, as a source: a folder read in place, never moved
            : "${MIRROR_BUCKET:?set MIRROR_BUCKET, S3_ENDPOINT and AWS credentials (docs/sources.md)}"
            export MIRROR_FOLDER=${MIRROR_FOLDER:-$PWD/$dir/folder}
            "$py" examples/s3-mirror/bucket.py create
            [ -d "$MIRROR_FOLDER" ] || "$py" examples/s3-mirror/generate.py --out "$MIRROR_FOLDER" "$@" >/dev/null
            "$py" main.py --drain --no-dashboard --config examples/s3-mirror/source_config.json \
                --watch-dir "$dir/watch_dir" --results-dir "$dir/results" --empty-files process
            "$py" examples/s3-mirror/bucket.py list ;;
        voters)
            export VOTERS_API_SECRET=${VOTERS_API_SECRET:-demo-secret}
            "$py" -m examples.voters.generate --out "$dir/watch_dir/unprocessed" \
                --roll "$dir/roll.json" "$@"
            "$py" -m examples.voters.api --registry "$dir/roll.json" \
                --secret "$VOTERS_API_SECRET" >"$dir/api.log" 2>&1 &
            local api=$! tries=0
            until grep -q listening "$dir/api.log" || [ $((tries += 1)) -gt 100 ]; do sleep 0.1; done
            "${folderd[@]}" || { kill "$api"; exit 1; }
            kill "$api"
            "$py" -m examples.voters.show "$dir"/results/*.xlsx.xlsx ;;
        *)  echo "unknown recipe: $name (elections, s3-mirror, s3-mirror-source, voters)" >&2; exit 2 ;;
    esac
}

run_tests() {
    # With arguments: pytest with exactly those. Without: the suite in TEST_WORKERS processes
    # (pytest-xdist; most tests wait on real daemons and servers, not on a core), then the
    # tests marked `serial` (deadlines measured, bursts, CPU) alone; both parts always run.
    if [ $# -gt 0 ]; then exec "$VENV/bin/python" -m pytest "$@"; fi
    local status=0
    "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-4}" --dist worksteal -m "not serial" \
        --durations=20 || status=$?
    "$VENV/bin/python" -m pytest -p no:xdist -m serial --durations=10 || status=$?
    return $status
}

verb=${1:-run}
shift || true
case "$verb" in
    setup)    setup requirements.txt ;;
    run)      setup requirements.txt; exec "$VENV/bin/python" main.py --watch "$@" ;;
    test-config) setup requirements.txt; exec "$VENV/bin/python" main.py --test "$@" ;;
    run-file) setup requirements.txt; exec "$VENV/bin/python" main.py --input "${1:?usage: run.sh run-file FILE}" ;;
    drain)    setup requirements.txt; exec "$VENV/bin/python" main.py --drain "$@" ;;
    test)     setup requirements-dev.txt; run_tests "$@" ;;
    test-deploy) setup requirements-dev.txt; VENV=$VENV exec deploy/test-deploy.sh "$@" ;;
    lint)     setup requirements-dev.txt; "$VENV/bin/ruff" check . && "$VENV/bin/ruff" format --check . &&
              "$VENV/bin/mypy" && exec "$VENV/bin/lint-imports" --no-cache ;;
    docs)     setup requirements-dev.txt; NO_MKDOCS_2_WARNING=1 exec "$VENV/bin/mkdocs" build --strict --clean "$@" ;;
    docs-serve) setup requirements-dev.txt; NO_MKDOCS_2_WARNING=1 exec "$VENV/bin/mkdocs" serve --dev-addr 127.0.0.1:8001 "$@" ;;
    sample)   setup requirements.txt; exec "$VENV/bin/python" generate_sample_logs.py --count "${1:-20}" ;;
    bench)    setup requirements-dev.txt; exec "$VENV/bin/python" -m bench "$@" ;;
    recipe)   setup requirements.txt; recipe "$@" ;;
    clean)    rm -rf "$VENV" .pytest_cache .ruff_cache .hypothesis bench/out build/recipes build/site
              find . -name __pycache__ -type d -prune -exec rm -rf {} +
              find watch_dir results -mindepth 1 ! -name .gitkeep -exec rm -rf {} + 2>/dev/null || true ;;
    *)        echo "unknown verb: $verb (setup, run, test, test-deploy, test-config, run-file FILE, drain, lint, docs, docs-serve, sample [N], bench, recipe NAME, clean)" >&2; exit 2 ;;
esac
