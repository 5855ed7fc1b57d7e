"""Debian's nginx running deploy/nginx-folderd.conf, with a self-signed certificate, in
front of a dashboard: the snippet as shipped, with only its EDIT lines changed."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.deploy import host
from tests.deploy.shell import Log, fail, free_port, run, wait_for

SNIPPET = Path(__file__).resolve().parents[2] / "deploy" / "nginx-folderd.conf"
NAME = "folderd.test"
START_TIMEOUT_S = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(folder: Path) -> Certificate:
    folder.mkdir(parents=True, exist_ok=True)
    cert = Certificate(folder / "folderd.crt", folder / "folderd.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}",
         "-keyout", cert.key, "-out", cert.cert], timeout=60)  # fmt: skip
    return cert


def site(upstream: str, port: int, cert: Certificate) -> str:
    """The snippet with its EDIT lines set: each must be found exactly as shipped, so a
    change there is a change this test sees."""
    text = SNIPPET.read_text()
    edits = {
        "server 127.0.0.1:8000;": f"server {upstream};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "server_name folderd.example.org;": f"server_name {NAME};",
        "ssl_certificate /etc/ssl/folderd/folderd.crt;": f"ssl_certificate {cert.cert};",
        "ssl_certificate_key /etc/ssl/folderd/folderd.key;": f"ssl_certificate_key {cert.key};",
    }
    for shipped, ours in edits.items():
        if text.count(shipped) != 1:
            fail(f"{SNIPPET.name}: expected one `{shipped}`, found {text.count(shipped)}")
        text = text.replace(shipped, ours)
    return text


class Nginx:
    def __init__(self, work: Path, upstream: str, cert: Certificate) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"https://{NAME}:{self.port}"
        self.error_log = Log.file(work / "error.log")
        self.access_log = Log.file(work / "access.log")
        work.mkdir(parents=True, exist_ok=True)
        (work / "folderd.conf").write_text(site(upstream, self.port, cert))
        # What Debian's /etc/nginx/nginx.conf gives a site, with this run's paths.
        (work / "nginx.conf").write_text(f"""\
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/temp/body;
    proxy_temp_path {work}/temp/proxy;
    fastcgi_temp_path {work}/temp/fastcgi;
    uwsgi_temp_path {work}/temp/uwsgi;
    scgi_temp_path {work}/temp/scgi;
    include {work}/folderd.conf;
}}
""")
        (work / "temp").mkdir(exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.work / "nginx.conf"
        run(["nginx", "-t", "-c", conf], timeout=30, logs=[self.error_log])
        with (self.work / "stderr.log").open("ab") as err:
            self._proc = subprocess.Popen(
                ["nginx", "-c", str(conf), "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )  # fmt: skip
        wait_for(self._listens, START_TIMEOUT_S, "nginx to listen", self.error_log)

    def _listens(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            fail(f"nginx exited ({self._proc.returncode})", self.error_log,
                 Log.file(self.work / "stderr.log"))  # fmt: skip
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        return False

    def ssl_context(self, cert: Certificate) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(cert.cert))

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(15)
        sweep(self.work)


def sweep(work: Path) -> None:
    """An nginx of ours a killed run left (its command line names the work folder)."""
    host.kill_processes_naming(work)
