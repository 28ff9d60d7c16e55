"""The registry's gate: passwords verified on the verifier store and remembered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from central.registry import Registry
from central.storage import AsyncStore, BootPolicy
from central.storage.passwords import load_or_create_key
from tests.support.aio import run

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


class CountingVerifier:
    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.calls = 0

    async def verify_password(
        self, station_id: str, password: str, *, remember: str | None = None
    ) -> bool:
        self.calls += 1  # one scrypt check each
        return await self.store.verify_password(station_id, password, remember=remember)


def test_passwords_are_verified_once_on_the_verifier_and_forgotten_on_change(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        url = f"sqlite://{tmp_path / 'central.db'}"
        async with await AsyncStore.open(url) as store, await AsyncStore.open(url) as other:
            verifier = CountingVerifier(other)
            registry = Registry(store, lambda: NOW, verifier=verifier)  # type: ignore[arg-type]
            await registry.add(
                "S1", password="pw-1", policy=BootPolicy.ACCEPTED, heartbeat_interval=60
            )
            await registry.add(
                "S2", password=None, policy=BootPolicy.PENDING, heartbeat_interval=60
            )
            assert registry.is_known("S1")
            assert not registry.is_known("S3")
            assert await registry.check_password("S1", "pw-1")
            assert await registry.check_password("S1", "pw-1")
            assert verifier.calls == 1  # remembered
            assert not await registry.check_password("S1", "wrong")
            assert not await registry.check_password("S1", None)
            assert verifier.calls == 2
            assert await registry.check_password("S2", None)  # no password configured
            assert not registry.is_accepted("S2")
            await registry.remove("S1")
            await registry.add(
                "S1", password="pw-2", policy=BootPolicy.ACCEPTED, heartbeat_interval=60
            )
            assert not await registry.check_password("S1", "pw-1")
            assert await registry.check_password("S1", "pw-2")
            registry.record_answer("S1", BootPolicy.PENDING)
            assert not registry.is_accepted("S1")  # must boot again
            registry.record_answer("S1", BootPolicy.ACCEPTED)
            assert registry.is_accepted("S1")

    run(scenario())


def test_a_checked_password_is_remembered_across_a_restart_until_it_changes(
    tmp_path: Path,
) -> None:
    """After a central restart, 10,000 reconnecting stations must not cost 10,000 scrypts."""
    key = load_or_create_key(tmp_path / "credential-cache.key")

    async def scenario() -> None:
        url = f"sqlite://{tmp_path / 'central.db'}"
        async with await AsyncStore.open(url) as store, await AsyncStore.open(url) as other:
            verifier = CountingVerifier(other)

            async def restarted(with_key: bytes) -> Registry:
                registry = Registry(store, lambda: NOW, verifier=verifier, credential_key=with_key)  # type: ignore[arg-type]
                await registry.load()
                return registry

            # Registered before the cache existed (or by a tool that does not remember).
            await store.add_station("S1", created_at=NOW, password="pw-1")
            await store.add_station("S2", created_at=NOW, password="pw-2")
            first = await restarted(key)
            assert await first.check_password("S1", "pw-1")
            assert verifier.calls == 1
            # A new process with the same key: S1 is let in on the remembered digest.
            second = await restarted(key)
            assert await second.check_password("S1", "pw-1")
            assert verifier.calls == 1
            assert not await second.check_password("S1", "pw-2")  # a wrong one: scrypt says no
            assert verifier.calls == 2
            assert await second.check_password("S2", "pw-2")  # never checked before: scrypt
            assert verifier.calls == 3
            # The password changed behind the cache: the old one is not remembered any more.
            await store.set_password("S1", "pw-new")
            third = await restarted(key)
            assert not await third.check_password("S1", "pw-1")
            assert await third.check_password("S1", "pw-new")
            assert verifier.calls == 5
            assert await (await restarted(key)).check_password("S1", "pw-new")
            assert verifier.calls == 5
            # Another key (the file was lost): every station pays one scrypt again.
            other_key = await restarted(bytes(32))
            assert await other_key.check_password("S2", "pw-2")
            assert verifier.calls == 6
            # Registered through the registry: remembered from the start, so even the
            # first connection (and the first after a restart) costs no scrypt.
            await other_key.add(
                "S3", password="pw-3", policy=BootPolicy.ACCEPTED, heartbeat_interval=60
            )
            assert await other_key.check_password("S3", "pw-3")
            assert await (await restarted(bytes(32))).check_password("S3", "pw-3")
            assert not await (await restarted(bytes(32))).check_password("S3", "pw-2")
            assert verifier.calls == 7  # only the wrong password went to scrypt
            # A disabled station is not let in on a remembered digest.
            await store.set_enabled("S2", False)
            assert not await (await restarted(bytes(32))).check_password("S2", "pw-2")

    run(scenario())


def test_the_key_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "credential-cache.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    path.write_bytes(b"short")
    replaced = load_or_create_key(path)
    assert len(replaced) == 32
    assert replaced != key
