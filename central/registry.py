"""The station registry as the server sees it: the store's station table, mirrored in memory.

Every connection attempt asks "is this station known, are its credentials right"
before the upgrade (§3.2, `os3p.server.StationGate`). Answering from memory keeps a
reconnect storm (10,000 stations after a central restart) off the store's single
thread; every change goes through this class, which writes the store first and the
mirror after the commit, so the two cannot disagree.

Passwords are checked by the store (scrypt, ~50 ms of CPU). That runs on a second
AsyncStore (`verifier`: its own thread and database connection) when one is given, so
that a reconnect storm of password-protected stations does not hold up the storing of
messages on the main store's thread. A verified password is remembered per station as
a keyed digest (never the password), so a station that reconnects after a network blip
is not hashed again; a changed password or a removed station forgets it.

Boot policy (§3.1, DESIGN.md): the policy in the registry is what the next
BootNotification is answered with. A station may send other CALLs only when its
policy is Accepted and this process has not answered its last boot with something
else: a station answered Pending must boot again (the operator's accept triggers it)
before it is Accepted. After a central restart the policy alone decides, because
stations reconnect without a BootNotification when nothing changed (§3.3).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from central.logs import log_event
from central.storage import AsyncStore, BootPolicy, Station, UnknownStation, passwords

__all__ = ["Registry"]

log = logging.getLogger(__name__)


class Registry:
    """Known stations, their credentials and boot policy; implements `StationGate`."""

    def __init__(
        self,
        store: AsyncStore,
        clock: Callable[[], datetime],
        *,
        verifier: AsyncStore | None = None,
        credential_key: bytes | None = None,
    ) -> None:
        """`credential_key`: the key of the credential cache that outlives a restart
        (central/storage/passwords.py); None remembers for this process only."""
        self._store = store
        self._verifier = verifier or store
        self._clock = clock
        self._stations: dict[str, Station] = {}
        self._answered: dict[str, BootPolicy] = {}  # answer to each station's last boot
        self._verified: dict[str, str] = {}  # station → digest of its checked password
        self._persistent = credential_key is not None
        self._key = secrets.token_bytes(32) if credential_key is None else credential_key

    async def load(self) -> None:
        self._stations = {s.station_id: s for s in await self._store.list_stations()}
        self._answered = await self._store.boot_answers()
        if self._persistent:
            self._verified = await self._store.remembered_credentials()

    # -------------------------------------------------------------- StationGate
    def is_known(self, station_id: str) -> bool:
        station = self._stations.get(station_id)
        known = station is not None and station.enabled
        if not known:
            log_event(log, logging.INFO, "refused_unknown", station=station_id, http=404)
        return known

    async def check_password(self, station_id: str, password: str | None) -> bool:
        station = self._stations.get(station_id)
        if station is None:
            return False
        if not station.has_password:
            # No password configured: the station is identified by its client
            # certificate (checked after the TLS handshake) or by nothing at all.
            return True
        if password is None:
            log_event(log, logging.WARNING, "refused_credentials", station=station_id, http=401)
            return False
        digest = passwords.credential_digest(self._key, station_id, password)
        remembered = self._verified.get(station_id)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            return True
        remember = digest if self._persistent else None
        if await self._verifier.verify_password(station_id, password, remember=remember):
            self._verified[station_id] = digest
            return True
        log_event(log, logging.WARNING, "refused_credentials", station=station_id, http=401)
        return False

    # -------------------------------------------------------------- queries
    def get(self, station_id: str) -> Station | None:
        return self._stations.get(station_id)

    def all(self) -> list[Station]:
        return sorted(self._stations.values(), key=lambda s: s.station_id)

    def policy(self, station_id: str) -> BootPolicy:
        station = self._stations.get(station_id)
        return BootPolicy.REJECTED if station is None else station.policy

    def is_accepted(self, station_id: str) -> bool:
        """May this station send CALLs other than BootNotification?"""
        station = self._stations.get(station_id)
        if station is None or station.policy is not BootPolicy.ACCEPTED:
            return False
        # Never booted (or last answered Pending/Rejected): only BootNotification (§3.1).
        return self._answered.get(station_id) is BootPolicy.ACCEPTED

    def answered(self, station_id: str) -> BootPolicy | None:
        """What this process answered the station's last BootNotification with."""
        return self._answered.get(station_id)

    def record_answer(self, station_id: str, answer: BootPolicy) -> None:
        self._answered[station_id] = answer

    # -------------------------------------------------------------- changes
    async def add(
        self,
        station_id: str,
        *,
        password: str | None,
        policy: BootPolicy,
        heartbeat_interval: int,
        cert_identity: str | None = None,
    ) -> Station:
        digest = None if password is None else self.credential_digest(station_id, password)
        station = await self._store.add_station(
            station_id,
            created_at=self._clock(),
            password=password,
            cert_identity=cert_identity,
            policy=policy,
            heartbeat_interval=heartbeat_interval,
            remember=digest,
        )
        self._stations[station_id] = station
        self._answered.pop(station_id, None)
        self._verified.pop(station_id, None)
        if digest is not None:
            self._verified[station_id] = digest
        return station

    def credential_digest(self, station_id: str, password: str) -> str | None:
        """What the credential cache remembers of this password; None when the cache
        lasts only as long as this process (nothing to store)."""
        if not self._persistent:
            return None
        return passwords.credential_digest(self._key, station_id, password)

    async def remove(self, station_id: str) -> None:
        if station_id not in self._stations:
            raise UnknownStation(station_id)
        await self._store.remove_station(station_id)
        del self._stations[station_id]
        self._answered.pop(station_id, None)
        self._verified.pop(station_id, None)

    async def set_policy(
        self, station_id: str, policy: BootPolicy, *, heartbeat_interval: int | None = None
    ) -> Station:
        if station_id not in self._stations:
            raise UnknownStation(station_id)
        station = await self._store.set_policy(
            station_id, policy, heartbeat_interval=heartbeat_interval
        )
        self._stations[station_id] = station
        return station
