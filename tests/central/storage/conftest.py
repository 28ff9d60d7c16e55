"""Every store test runs against both backends: SQLite on a real file in
tmp_path, and PostgreSQL in a throwaway cluster started once per session
(`central.storage.pgtemp`), one fresh schema per test (CREATE DATABASE costs
~0.4 s with fsync on; a schema, reached through the URL's search_path, is as
empty and isolated for the store, which never names a schema)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.storage import Store, open_store
from central.storage.pgtemp import TemporaryPostgres, find_postgres_bin


def _postgres_missing() -> str | None:
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if find_postgres_bin() is None:
        return (
            "PostgreSQL server binaries not found (no initdb on PATH or in "
            "/usr/lib/postgresql/*/bin; Debian package: postgresql)"
        )
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    missing = _postgres_missing()
    if missing is not None:
        pytest.skip(missing)
    server = TemporaryPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")


@pytest.fixture(scope="session")
def postgres_tests_database(postgres_server: TemporaryPostgres) -> str:
    return postgres_server.create_database("store_tests")


def _fresh_schema(database_url: str) -> str:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}".encode())
    return f"{database_url}?options=-c%20search_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'central.db'}"
    return _fresh_schema(request.getfixturevalue("postgres_tests_database"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
