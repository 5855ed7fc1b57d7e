"""The Dockerfile built and run, and docker-compose.yml brought up and down, for real.

A private dockerd (tests/deploy/engine.py); the `FROM` image is a minimal Debian with
Python made here and imported under the exact name the Dockerfile asks for (no registry
but Debian's and PyPI is reachable). Two deployments run side by side, one by `docker run`
as the README shows, one by `docker-compose up -d --build` with the project's compose file
(plus deploy/docker-compose.ci.yml, which only builds on the host's network): the same
checks for both, in order, the last one stopping them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.deploy.engine import DOCKER, Engine
from tests.deploy.shell import Log, Stopwatch, check, free_port, unpack, wait_for

pytestmark = pytest.mark.timeout(900)

IMAGE = "folderd:test-deploy"
IMAGE_UID = 10001  # the Dockerfile's folderd user
COMPOSE_UID = 2345  # a user of the host's, named to compose by HOST_UID/HOST_GID
PROJECT = "folderdtest"
COMPOSE_FILES = ("-f", "docker-compose.yml", "-f", "deploy/docker-compose.ci.yml")
WATCH_DIR = "/var/lib/folderd/watch_dir"
HEALTHY_WITHIN_S = 30 + 30 + 5 + 25  # start period + interval + timeout, and a margin
LOG = "2024-01-02T10:00:00 INFO app started\n2024-01-02T10:00:01 ERROR disk full\n"


def from_image() -> str:
    """The name on the Dockerfile's FROM line."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    (name,) = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    return name


@pytest.fixture(scope="module")
def engine(work: Path) -> Iterator[Engine]:
    docker = Engine(work / "docker")
    try:
        docker.start()
        yield docker
    finally:
        docker.stop()


@pytest.fixture(scope="module")
def source(engine: Engine, checkout: Path) -> Path:
    return unpack(checkout, engine.work / "src")


@pytest.fixture(scope="module")
def image(engine: Engine, debian: Path, source: Path, timings: dict[str, float]) -> str:
    with Stopwatch(timings, "docker: docker import of the tree as the FROM image"):
        engine.docker("import", "-c", "ENV LANG=C.UTF-8", "-c", 'CMD ["python3"]', debian,
                      from_image(), timeout=300)  # fmt: skip
    with Stopwatch(timings, "docker: docker build --network=host (uncached)"):
        engine.docker("build", "--network=host", "-t", IMAGE, source, timeout=600)
    return IMAGE


@dataclass
class Deployment:
    how: str
    engine: Engine
    container: str  # its id
    port: int  # published on the host's 127.0.0.1
    queue: Path  # the host folder mounted as watch_dir
    results: Path
    uid: int
    started: float  # time.monotonic() at `docker run` / `compose up`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Log:
        return Log(f"docker logs ({self.how})", self._logs)

    def _logs(self) -> str:
        done = self.engine.docker("logs", self.container, check=False)
        return done.stdout + done.stderr

    def inspect(self, template: str) -> str:
        return self.engine.docker("inspect", "-f", template, self.container, check=False).stdout


def _owned_dirs(base: Path, uid: int) -> tuple[Path, Path]:
    """watch_dir and results folders for a container running as `uid`, as the manual
    says to make them (`chown -R 10001:10001 watch_dir results`)."""
    queue, results = base / "watch_dir", base / "results"
    for folder in (queue, results):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, uid, uid)
    return queue, results


def _docker_run(engine: Engine, image: str) -> Deployment:
    queue, results = _owned_dirs(engine.work / "run", IMAGE_UID)
    port = free_port()
    started = time.monotonic()
    container = engine.docker(
        "run", "-d", "--name", "folderd-run", "--stop-timeout", "40",
        "-p", f"127.0.0.1:{port}:8000", "-e", "FOLDERD_ALLOW_NO_TOKEN=1",
        "-v", f"{queue}:{WATCH_DIR}", "-v", f"{results}:/var/lib/folderd/results", image,
    ).stdout.strip()  # fmt: skip
    return Deployment("docker run", engine, container, port, queue, results, IMAGE_UID, started)


def _compose_env(port: int) -> dict[str, str]:
    return {"HOST_UID": str(COMPOSE_UID), "HOST_GID": str(COMPOSE_UID), "HOST_PORT": str(port)}


def _compose_up(engine: Engine, source: Path, timings: dict[str, float]) -> Deployment:
    queue, results = _owned_dirs(source, COMPOSE_UID)
    port = free_port()
    started = time.monotonic()
    with Stopwatch(timings, "docker: docker-compose up -d --build (cached layers)"):
        engine.compose(source, "-p", PROJECT, *COMPOSE_FILES, "up", "-d", "--build",
                       env=_compose_env(port))  # fmt: skip
    engine.note_network(f"{PROJECT}_default")
    container = engine.compose(source, "-p", PROJECT, *COMPOSE_FILES, "ps", "-q", "folderd",
                               env=_compose_env(port)).stdout.strip()  # fmt: skip
    check(container, "docker-compose ps names no folderd container", engine.log)
    return Deployment("docker-compose", engine, container, port, queue, results, COMPOSE_UID,
                      started)  # fmt: skip


@pytest.fixture(scope="module")
def deployments(
    engine: Engine, image: str, source: Path, timings: dict[str, float]
) -> Iterator[dict[str, Deployment]]:
    """Both at once: their HEALTHCHECKs' first 30 s pass together."""
    both = {}
    try:
        both["docker run"] = _docker_run(engine, image)
        both["docker-compose"] = _compose_up(engine, source, timings)
        yield both
    finally:
        if "docker-compose" in both:
            engine.compose(source, "-p", PROJECT, *COMPOSE_FILES, "down", check=False,
                           env=_compose_env(both["docker-compose"].port))  # fmt: skip


HOW = ["docker run", "docker-compose"]


def test_the_dockerfile_builds_unchanged_into_a_non_root_image(engine: Engine, image: str) -> None:
    config = json.loads(engine.docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert config["Entrypoint"] == ["./run.sh", "run"]
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "python", "-c"]
    assert set(config["Volumes"]) == {WATCH_DIR, "/var/lib/folderd/results"}


@pytest.mark.parametrize("how", HOW)
def test_health_answers_on_the_published_loopback_port(
    deployments: dict[str, Deployment], how: str, timings: dict[str, float]
) -> None:
    d = deployments[how]

    def health() -> httpx.Response | None:
        try:
            r = httpx.get(d.url + "/health", timeout=5)
        except httpx.HTTPError:
            return None
        return r if r.status_code == 200 else None

    body = wait_for(health, 90, f"{d.url}/health to answer 200", d.logs).json()
    timings.setdefault(f"docker: {how}: start to /health 200", time.monotonic() - d.started)
    check(body["status"] == "healthy", f"/health says {body}", d.logs)
    published = d.engine.docker("port", d.container, "8000/tcp").stdout.split()
    check(published == [d.url.removeprefix("http://")], f"published on {published}", d.logs)


@pytest.mark.parametrize("how", HOW)
def test_a_dropped_file_is_processed_and_what_the_container_writes_is_its_users(
    deployments: dict[str, Deployment], how: str
) -> None:
    d = deployments[how]
    unprocessed = d.queue / "unprocessed"
    wait_for(unprocessed.is_dir, 30, "the daemon to make unprocessed/", d.logs)
    tmp = unprocessed / ".dropped.log.tmp"
    tmp.write_text(LOG)
    tmp.rename(unprocessed / "dropped.log")  # as rsync and cp-then-mv do
    summary_path = d.results / "dropped.log.json"
    moved = d.queue / "processed" / "dropped.log"  # after its results: waited for second
    wait_for(lambda: summary_path.exists() and moved.exists(), 30, "dropped.log processed",
             d.logs)  # fmt: skip
    summary = json.loads(summary_path.read_text())
    check(summary["status"] == "processed", f"summary: {summary}", d.logs)
    written = [summary_path, d.queue / ".folderd", *(d.queue / s for s in ("processed", "failed"))]
    owners = {str(p.relative_to(d.queue.parent)): (p.stat().st_uid, p.stat().st_gid)
              for p in written}  # fmt: skip
    assert owners == dict.fromkeys(owners, (d.uid, d.uid))


@pytest.mark.parametrize("how", HOW)
def test_the_healthcheck_turns_healthy(
    deployments: dict[str, Deployment], how: str, timings: dict[str, float]
) -> None:
    d = deployments[how]
    wait_for(lambda: d.inspect("{{.State.Health.Status}}").strip() == "healthy",
             HEALTHY_WITHIN_S - (time.monotonic() - d.started), "HEALTHCHECK: healthy",
             Log("health log", lambda: d.inspect("{{json .State.Health}}")), d.logs)  # fmt: skip
    timings.setdefault(f"docker: {how}: start to healthy", time.monotonic() - d.started)


@pytest.mark.parametrize("how", HOW)
def test_stop_is_a_warm_stop(
    deployments: dict[str, Deployment], how: str, source: Path, timings: dict[str, float]
) -> None:
    """SIGTERM reaches the daemon (PID 1 in the container, through run.sh's exec): it
    finishes or returns what it holds, says daemon_stopped and exits 0."""
    d = deployments[how]
    # Followed from before the stop: `down` removes the container with its logs.
    waiter = subprocess.Popen([DOCKER, "wait", d.container], env=d.engine.env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    log_path = d.engine.work / f"{d.container}.log"
    with log_path.open("w") as out:
        follower = subprocess.Popen([DOCKER, "logs", "-f", d.container], env=d.engine.env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    names = [f"burst_{i:02d}.log" for i in range(20)]
    for name in names:  # some are in flight when the signal comes
        (d.queue / "unprocessed" / name).write_text(LOG * 200)
    with Stopwatch(timings, f"docker: {how}: stop"):
        if how == "docker run":
            d.engine.docker("stop", d.container, timeout=60)
        else:
            d.engine.compose(source, "-p", PROJECT, *COMPOSE_FILES, "down", timeout=120,
                             env=_compose_env(d.port))  # fmt: skip
    exit_code = waiter.communicate(timeout=60)[0].strip()
    follower.wait(60)
    log = Log.file(log_path)
    check(exit_code == "0", f"{how}: the container exited {exit_code!r}", log)
    events = [json.loads(line) for line in log.read().splitlines() if line.startswith("{")]
    check(any(e.get("event") == "daemon_stopped" for e in events), "no daemon_stopped", log)
    check(not list((d.queue / "underprocess").iterdir()), "files left in underprocess/", log)
    kept = {p.name for s in ("unprocessed", "processed") for p in (d.queue / s).iterdir()}
    check(set(names) <= kept, f"lost: {set(names) - kept}", log)
