"""Who is asking, and may they: API principals, organisation tokens, rights.

The `api.token` of the configuration is the **administrator**: every station,
every route, organisations managed. Each organisation has its own tokens
(issued by the administrator, shown once, stored as a SHA-256 digest, see
`central.storage.commands`) and sees only the stations it owns or was granted a
function on. An owner holds every right on its stations; a grant gives one
right (`central.operations.Right`) on one station.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from central.errors import CentralError
from central.operations import Right
from central.storage.commands import ADMIN

__all__ = ["Forbidden", "Principal", "hash_token", "missing_rights", "new_token"]


@dataclass(frozen=True)
class Principal:
    """The caller of an API request: the administrator (`organisation` None) or one
    organisation."""

    organisation: str | None

    @property
    def is_admin(self) -> bool:
        return self.organisation is None

    @property
    def actor(self) -> str:
        """The name recorded in the audit trail."""
        return self.organisation or ADMIN


class Forbidden(CentralError):
    """The organisation lacks a right on the station; nothing was queued or sent."""

    def __init__(self, principal: Principal, station_id: str, missing: Iterable[Right]) -> None:
        self.missing = sorted(missing)
        names = ", ".join(str(r) for r in self.missing) or "access"
        super().__init__(
            f"organisation {principal.organisation!r} has no {names} right on station"
            f" {station_id!r}"
        )
        self.station_id = station_id


def new_token() -> str:
    """A fresh organisation token: 256 random bits, URL-safe, behind a fixed prefix.

    The prefix makes a leaked token recognisable (log and secret scanners) and keeps
    it from starting with "-", which a command line would take for an option
    (`os3p-central --token -x…`: a test caught one in 64 tokens failing so).
    """
    return "os3p_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def missing_rights(needed: Iterable[Right], *, owner: bool, granted: Iterable[str]) -> set[Right]:
    """The rights of `needed` an organisation lacks on a station (none for its owner)."""
    if owner:
        return set()
    held = set(granted)
    return {right for right in needed if str(right) not in held}
