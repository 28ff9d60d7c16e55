"""Backend specifics: PostgreSQL reconnection, error translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.storage import BackendError, open_store
from central.storage.pgtemp import TemporaryPostgres

from ._helpers import T0


@pytest.mark.postgres
def test_postgres_reconnects_after_the_server_dropped_us(
    postgres_server: TemporaryPostgres,
) -> None:
    import psycopg

    url = postgres_server.create_database("reconnect")
    store = open_store(url)
    try:
        store.add_station("st1", created_at=T0)
        with psycopg.connect(postgres_server.base_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = 'reconnect' AND pid <> pg_backend_pid()"
            )
        # The first call finds the connection broken mid-way: it fails, nothing is
        # committed, and the next call runs on a fresh connection.
        try:
            store.add_station("st2", created_at=T0)
        except BackendError:
            store.add_station("st2", created_at=T0)
        assert [s.station_id for s in store.list_stations()] == ["st1", "st2"]
    finally:
        store.close()


def test_postgres_unreachable_is_a_backend_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(BackendError):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_sqlite_unopenable_path_is_a_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError):
        open_store(f"sqlite://{tmp_path / 'missing-dir' / 'central.db'}")
