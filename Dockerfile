# folderd in a container: the same verbs as make and ./run.sh (run.sh sets up the venv and
# starts the daemon), a non-root user, the queue and the results on volumes.
#   docker build -t folderd .
#   docker run -p 127.0.0.1:8000:8000 -e FOLDERD_ALLOW_NO_TOKEN=1 \
#       -v "$PWD/watch_dir:/var/lib/folderd/watch_dir" \
#       -v "$PWD/results:/var/lib/folderd/results" --user "$(id -u):$(id -g)" folderd
# (the dashboard listens on every address inside the container: without FOLDERD_TOKEN
# folderd refuses that unless FOLDERD_ALLOW_NO_TOKEN=1, fine for a loopback-only publish)
# Flags after the image name go to the daemon (`docker run … folderd --poll --workers 4`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so bind-mounted folders can be chowned to it (or run with --user).
RUN groupadd --system --gid 10001 folderd \
    && useradd --system --uid 10001 --gid folderd --home-dir /var/lib/folderd \
       --shell /usr/sbin/nologin folderd

WORKDIR /opt/folderd
# Dependencies first: this layer is rebuilt only when the requirements change.
COPY requirements.txt run.sh ./
RUN ./run.sh setup

COPY . .
RUN install -d -o folderd -g folderd /var/lib/folderd/watch_dir /var/lib/folderd/results

# Inside the container only: the dashboard must be reachable through the published port.
ENV FOLDERD_HOST=0.0.0.0 \
    FOLDERD_PORT=8000 \
    FOLDERD_WATCH_DIR=/var/lib/folderd/watch_dir \
    FOLDERD_RESULTS_DIR=/var/lib/folderd/results
VOLUME ["/var/lib/folderd/watch_dir", "/var/lib/folderd/results"]
EXPOSE 8000

USER 10001:10001
# No curl in slim images: the stdlib asks /health, which answers 503 (an error here) when unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health' % os.environ['FOLDERD_PORT'], timeout=4)"]
# Exec form, and run.sh execs python: SIGTERM from `docker stop` reaches the daemon itself.
ENTRYPOINT ["./run.sh", "run"]
