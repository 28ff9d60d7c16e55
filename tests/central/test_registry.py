"""The registry's gate: passwords verified on the verifier store and remembered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from central.registry import Registry
from central.storage import AsyncStore, BootPolicy
from tests.support.aio import run

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


class CountingVerifier:
    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.calls = 0

    async def verify_password(self, station_id: str, password: str) -> bool:
        self.calls += 1
        return await self.store.verify_password(station_id, password)


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
