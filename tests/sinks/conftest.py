"""Fixtures for the sink tests: the real servers of `tests.sinks.servers`. Without
PostgreSQL or `weed` the tests skip, except in CI (`CI` or `TEST_REQUIRE_SINKS` set),
where they must run."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sinks.servers import Database, Postgres, SeaweedS3, ServerMissing


def _missing(exc: ServerMissing) -> None:
    if os.environ.get("CI") or os.environ.get("TEST_REQUIRE_SINKS"):
        pytest.fail(f"{exc} is missing, and CI must run the sink tests (.ci/run installs it)")
    pytest.skip(f"{exc} is not installed (.ci/run installs it)")


def _cluster() -> Postgres:
    try:
        return Postgres()
    except ServerMissing as exc:
        _missing(exc)
        raise


@pytest.fixture(scope="session")
def pg_cluster() -> Postgres:
    """One cluster per test process; each test gets a database of its own (`postgres`).
    Removed when the process exits: outside any test's timeout."""
    pg = _cluster()
    atexit.register(pg.close)
    pg.start()
    return pg


_database_seq = iter(range(1_000_000))


@pytest.fixture
def postgres(pg_cluster: Postgres) -> Iterator[Database]:
    """A database of this test's own, in the test process's cluster."""
    name = f"t{next(_database_seq)}"
    yield pg_cluster.create_database(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A cluster of this test's own, which it may stop and start."""
    pg = _cluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


def _seaweed(data_dir: Path) -> Iterator[SeaweedS3]:
    try:
        server = SeaweedS3(data_dir)
    except ServerMissing as exc:
        _missing(exc)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the session (about 5 s to start): tests use buckets of their own."""
    yield from _seaweed(tmp_path_factory.mktemp("s3"))


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A SeaweedFS of this test's own, which it may stop and start (about 15 s to restart)."""
    yield from _seaweed(tmp_path)


_bucket_seq = iter(range(1_000_000))


@pytest.fixture
def bucket(s3_server: SeaweedS3) -> str:
    return s3_server.bucket(f"t{os.getpid()}-{next(_bucket_seq)}")
