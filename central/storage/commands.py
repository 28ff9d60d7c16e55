"""The command queue, organisations, webhook deliveries and the audit trail (issue 10).

`CommandStoreMixin` adds these methods to `SqlStore` (same rules as `store`: each
public method is one transaction; time is passed in, never read);
`AsyncCommandStoreMixin` mirrors them on `AsyncStore`. Tables: migration 2.

Theory of operation
- A command is a row in `command` plus one row per operation in
  `command_operation` (a single action is a bundle of one). Operations keep
  their own status and result, each committed as soon as it is known, so a
  crash mid-bundle loses no answer and a retry runs only what is not done.
- `submit_command` writes the command, its operations and an audit row in one
  transaction: once it returns, the command survives a restart.
- `start_attempt` moves a queued command to running (only if still queued: an
  expiry and a start cannot both win); `finish_attempt` moves it on. A final
  status (done, failed, expired) writes the audit outcome and, when the
  organisation has a webhook, a pending `webhook_delivery` — in the same
  transaction, so a result is never final without its notification queued.
- `recover_interrupted` at start: a command left running by a crash is queued
  again, or failed when it had `bypassRetry` (one attempt means one attempt).
- Organisation tokens are stored as SHA-256 hex digests. They are 256-bit random
  strings (`secrets`), so a fast hash is as good as scrypt here and the lookup
  stays one indexed query per API request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from central.queueing import CommandStatus
from central.storage._backends import Connection, Row
from central.storage.errors import StorageError

__all__ = [
    "ADMIN",
    "AsyncCommandStoreMixin",
    "AuditRecord",
    "CommandRecord",
    "CommandStoreMixin",
    "Delivery",
    "NewCommand",
    "OperationRecord",
    "Organisation",
    "OrganisationExists",
    "UnknownOrganisation",
]

P = ParamSpec("P")
T = TypeVar("T")

# The actor recorded for requests made with the administrator's token.
ADMIN = "admin"

OP_PENDING, OP_DONE, OP_FAILED = "pending", "done", "failed"


class OrganisationExists(StorageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"organisation {name!r} already exists")
        self.name = name


class UnknownOrganisation(StorageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"organisation {name!r} does not exist")
        self.name = name


@dataclass(frozen=True)
class NewCommand:
    correlation_id: str
    station_id: str
    organisation: str | None  # None: the administrator
    priority: int
    schedule_time: datetime | None
    deadline: datetime | None
    bypass_retry: bool
    operations: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class OperationRecord:
    position: int
    name: str
    params: dict[str, Any]
    status: str  # pending, done, failed
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    finished_at: datetime | None


@dataclass(frozen=True)
class CommandRecord:
    correlation_id: str
    seq: int
    station_id: str
    organisation: str | None
    priority: int
    schedule_time: datetime | None
    deadline: datetime | None
    bypass_retry: bool
    status: CommandStatus
    attempts: int
    last_attempt_at: datetime | None
    retry_at: datetime | None
    submitted_at: datetime
    finished_at: datetime | None
    operations: tuple[OperationRecord, ...] = ()


@dataclass(frozen=True)
class Organisation:
    name: str
    created_at: datetime
    stations: frozenset[str] = frozenset()  # owned
    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # station → rights
    webhook: str | None = None
    tokens: int = 0


@dataclass(frozen=True)
class Delivery:
    correlation_id: str
    organisation: str
    url: str
    body: dict[str, Any]
    attempts: int
    next_at: datetime
    secret: str | None = None  # signs the POST (central/webhooks.py); None: webhook set before


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    station_id: str
    correlation_id: str | None
    what: list[str]
    outcome: str
    detail: str | None


_COMMAND_COLUMNS = (
    "correlation_id, seq, station_id, organisation, priority, schedule_time, deadline,"
    " bypass_retry, status, attempts, last_attempt_at, retry_at, submitted_at, finished_at"
)
_OPERATION_COLUMNS = "position, name, params, status, result, error, attempts, finished_at"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


class CommandStoreMixin:
    """The queue's part of `SqlStore` (which provides `_db`)."""

    _db: Connection

    # -- rows to records

    def _command(self, row: Row, operations: tuple[OperationRecord, ...] = ()) -> CommandRecord:
        db = self._db
        (cid, seq, sid, org, priority, schedule, deadline, bypass, status, attempts) = row[:10]
        last_attempt, retry_at, submitted, finished = row[10:]
        return CommandRecord(
            correlation_id=cid,
            seq=int(seq),
            station_id=sid,
            organisation=org,
            priority=int(priority),
            schedule_time=db.from_opt_ts(schedule),
            deadline=db.from_opt_ts(deadline),
            bypass_retry=bool(bypass),
            status=CommandStatus(status),
            attempts=int(attempts),
            last_attempt_at=db.from_opt_ts(last_attempt),
            retry_at=db.from_opt_ts(retry_at),
            submitted_at=db.from_ts(submitted),
            finished_at=db.from_opt_ts(finished),
            operations=operations,
        )

    def _operations(self, correlation_id: str) -> tuple[OperationRecord, ...]:
        rows = self._db.query(
            f"SELECT {_OPERATION_COLUMNS} FROM command_operation"
            " WHERE correlation_id = ? ORDER BY position",
            (correlation_id,),
        )
        return tuple(
            OperationRecord(
                position=int(position),
                name=name,
                params=json.loads(params),
                status=status,
                result=_loads(result),
                error=_loads(error),
                attempts=int(attempts),
                finished_at=self._db.from_opt_ts(finished),
            )
            for position, name, params, status, result, error, attempts, finished in rows
        )

    def _get_command(self, correlation_id: str) -> CommandRecord | None:
        rows = self._db.query(
            f"SELECT {_COMMAND_COLUMNS} FROM command WHERE correlation_id = ?", (correlation_id,)
        )
        return self._command(rows[0], self._operations(correlation_id)) if rows else None

    def _audit(
        self,
        *,
        at: datetime,
        actor: str,
        station_id: str,
        correlation_id: str | None,
        what: Sequence[str],
        outcome: str,
        detail: str | None = None,
    ) -> None:
        self._db.run(
            "INSERT INTO audit (at, actor, station_id, correlation_id, what, outcome, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self._db.ts(at),
                actor,
                station_id,
                correlation_id,
                _dumps(list(what)),
                outcome,
                detail,
            ),
        )

    # -- the queue

    def submit_command(self, new: NewCommand, *, at: datetime) -> CommandRecord:
        """Store a new queued command and audit its submission."""
        db = self._db
        with db.transaction("submit_command", write=True):
            db.run(
                "INSERT INTO command (correlation_id, station_id, organisation, priority,"
                " schedule_time, deadline, bypass_retry, status, attempts, submitted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    new.correlation_id,
                    new.station_id,
                    new.organisation,
                    new.priority,
                    db.opt_ts(new.schedule_time),
                    db.opt_ts(new.deadline),
                    new.bypass_retry,
                    str(CommandStatus.QUEUED),
                    db.ts(at),
                ),
            )
            db.run_many(
                "INSERT INTO command_operation (correlation_id, position, name, params, status,"
                " attempts) VALUES (?, ?, ?, ?, ?, 0)",
                [
                    (new.correlation_id, position, name, _dumps(params), OP_PENDING)
                    for position, (name, params) in enumerate(new.operations)
                ],
            )
            self._audit(
                at=at,
                actor=new.organisation or ADMIN,
                station_id=new.station_id,
                correlation_id=new.correlation_id,
                what=[name for name, _ in new.operations],
                outcome="submitted",
            )
            record = self._get_command(new.correlation_id)
            assert record is not None  # inserted above, same transaction
            return record

    def get_command(self, correlation_id: str) -> CommandRecord | None:
        with self._db.transaction("get_command", write=False):
            return self._get_command(correlation_id)

    def list_commands(
        self,
        *,
        station_id: str | None = None,
        organisation: str | None = None,
        status: CommandStatus | None = None,
        limit: int = 100,
    ) -> list[CommandRecord]:
        """Newest first, with their operations; `organisation` filters to its own."""
        where, params = ["1 = 1"], []
        for column, value in (
            ("station_id", station_id),
            ("organisation", organisation),
            ("status", None if status is None else str(status)),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._db.transaction("list_commands", write=False):
            rows = self._db.query(
                f"SELECT {_COMMAND_COLUMNS} FROM command WHERE {' AND '.join(where)}"
                " ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            )
            return [self._command(row, self._operations(row[0])) for row in rows]

    def queued_commands(self) -> list[CommandRecord]:
        """Every queued command, without operations (what the planner needs)."""
        with self._db.transaction("queued_commands", write=False):
            rows = self._db.query(
                f"SELECT {_COMMAND_COLUMNS} FROM command WHERE status = ? ORDER BY seq",
                (str(CommandStatus.QUEUED),),
            )
            return [self._command(row) for row in rows]

    def start_attempt(self, correlation_id: str, *, at: datetime) -> CommandRecord | None:
        """queued → running, one more attempt; None when it is no longer queued."""
        with self._db.transaction("start_attempt", write=True):
            started = self._db.run(
                "UPDATE command SET status = ?, attempts = attempts + 1, last_attempt_at = ?,"
                " retry_at = NULL WHERE correlation_id = ? AND status = ?",
                (
                    str(CommandStatus.RUNNING),
                    self._db.ts(at),
                    correlation_id,
                    str(CommandStatus.QUEUED),
                ),
            )
            return self._get_command(correlation_id) if started else None

    def record_operation(
        self,
        correlation_id: str,
        position: int,
        *,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        """One operation's outcome: `result` when it succeeded, else `error`."""
        with self._db.transaction("record_operation", write=True):
            self._db.run(
                "UPDATE command_operation SET status = ?, result = ?, error = ?,"
                " attempts = attempts + 1, finished_at = ?"
                " WHERE correlation_id = ? AND position = ?",
                (
                    OP_FAILED if error is not None else OP_DONE,
                    None if result is None else _dumps(result),
                    None if error is None else _dumps(error),
                    self._db.ts(at),
                    correlation_id,
                    position,
                ),
            )

    def _finish(
        self, record: CommandRecord, status: CommandStatus, retry_at: datetime | None, at: datetime
    ) -> None:
        db = self._db
        db.run(
            "UPDATE command SET status = ?, retry_at = ?, finished_at = ? WHERE correlation_id = ?",
            (
                str(status),
                db.opt_ts(retry_at),
                db.ts(at) if status.final else None,
                record.correlation_id,
            ),
        )
        if not status.final:
            return
        failed = [op for op in record.operations if op.status == OP_FAILED]
        self._audit(
            at=at,
            actor=record.organisation or ADMIN,
            station_id=record.station_id,
            correlation_id=record.correlation_id,
            what=[op.name for op in record.operations],
            outcome=str(status),
            detail=None
            if not failed
            else "; ".join(f"{op.name}: {(op.error or {}).get('error')}" for op in failed),
        )
        if record.organisation is None:
            return
        hooks = db.query(
            "SELECT url, secret FROM org_webhook WHERE organisation = ?", (record.organisation,)
        )
        if not hooks:
            return
        body = {
            "correlationId": record.correlation_id,
            "status": str(status),
            "station": record.station_id,
        }
        url, secret = hooks[0]
        db.run(
            "INSERT INTO webhook_delivery (correlation_id, organisation, url, body, state,"
            " attempts, next_at, secret) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (record.correlation_id, record.organisation, url, _dumps(body), db.ts(at), secret),
        )

    def finish_attempt(
        self,
        correlation_id: str,
        *,
        status: CommandStatus,
        retry_at: datetime | None = None,
        at: datetime,
        only_if: CommandStatus = CommandStatus.RUNNING,
    ) -> CommandRecord | None:
        """Move a command from `only_if` to `status` (queued again with `retry_at`, or
        final: audited and notified). None when it was not in `only_if`."""
        with self._db.transaction("finish_attempt", write=True):
            record = self._get_command(correlation_id)
            if record is None or record.status is not only_if:
                return None
            self._finish(record, status, retry_at, at)
            return self._get_command(correlation_id)

    def recover_interrupted(self, *, at: datetime) -> list[CommandRecord]:
        """At start: commands left running by a stopped process go back to the queue,
        or fail if they had bypassRetry. Returns the commands that became final."""
        finals: list[CommandRecord] = []
        with self._db.transaction("recover_interrupted", write=True):
            rows = self._db.query(
                f"SELECT {_COMMAND_COLUMNS} FROM command WHERE status = ?",
                (str(CommandStatus.RUNNING),),
            )
            for row in rows:
                record = self._command(row, self._operations(row[0]))
                if not record.bypass_retry:
                    self._finish(record, CommandStatus.QUEUED, None, at)
                    continue
                error = _dumps(
                    {"error": "interrupted", "message": "the central stopped during the attempt"}
                )
                self._db.run(
                    "UPDATE command_operation SET status = ?, error = ?, finished_at = ?"
                    " WHERE correlation_id = ? AND status = ?",
                    (OP_FAILED, error, self._db.ts(at), record.correlation_id, OP_PENDING),
                )
                record = self._command(row, self._operations(row[0]))
                self._finish(record, CommandStatus.FAILED, None, at)
                final = self._get_command(record.correlation_id)
                assert final is not None
                finals.append(final)
        return finals

    # -- audit

    def record_audit(
        self,
        *,
        at: datetime,
        actor: str,
        station_id: str,
        what: Sequence[str],
        outcome: str,
        detail: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """An audit row for something refused before it became a command."""
        with self._db.transaction("record_audit", write=True):
            self._audit(
                at=at,
                actor=actor,
                station_id=station_id,
                correlation_id=correlation_id,
                what=what,
                outcome=outcome,
                detail=detail,
            )

    def audit_trail(
        self, *, station_id: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Newest first."""
        where, params = ["1 = 1"], []
        if station_id is not None:
            where.append("station_id = ?")
            params.append(station_id)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        with self._db.transaction("audit_trail", write=False):
            rows = self._db.query(
                "SELECT at, actor, station_id, correlation_id, what, outcome, detail FROM audit"
                f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
        return [
            AuditRecord(
                at=self._db.from_ts(at),
                actor=actor_,
                station_id=sid,
                correlation_id=cid,
                what=json.loads(what),
                outcome=outcome,
                detail=detail,
            )
            for at, actor_, sid, cid, what, outcome, detail in rows
        ]

    # -- organisations

    def _require_organisation(self, name: str) -> None:
        if not self._db.query("SELECT 1 FROM organisation WHERE name = ?", (name,)):
            raise UnknownOrganisation(name)

    def _organisation(self, name: str, created_at: Any) -> Organisation:
        db = self._db
        owned = db.query("SELECT station_id FROM org_station WHERE organisation = ?", (name,))
        grants: dict[str, set[str]] = {}
        for station_id, function in db.query(
            "SELECT station_id, function FROM org_grant WHERE organisation = ?", (name,)
        ):
            grants.setdefault(station_id, set()).add(function)
        hook = db.query("SELECT url FROM org_webhook WHERE organisation = ?", (name,))
        ((tokens,),) = db.query("SELECT COUNT(*) FROM org_token WHERE organisation = ?", (name,))
        return Organisation(
            name=name,
            created_at=db.from_ts(created_at),
            stations=frozenset(row[0] for row in owned),
            grants={sid: frozenset(rights) for sid, rights in grants.items()},
            webhook=hook[0][0] if hook else None,
            tokens=int(tokens),
        )

    def add_organisation(self, name: str, *, at: datetime) -> Organisation:
        with self._db.transaction("add_organisation", write=True):
            if not self._db.run(
                "INSERT INTO organisation (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, self._db.ts(at)),
            ):
                raise OrganisationExists(name)
            return self._organisation(name, self._db.ts(at))

    def get_organisation(self, name: str) -> Organisation | None:
        with self._db.transaction("get_organisation", write=False):
            rows = self._db.query(
                "SELECT name, created_at FROM organisation WHERE name = ?", (name,)
            )
            return self._organisation(*rows[0]) if rows else None

    def list_organisations(self) -> list[Organisation]:
        with self._db.transaction("list_organisations", write=False):
            rows = self._db.query("SELECT name, created_at FROM organisation ORDER BY name")
            return [self._organisation(*row) for row in rows]

    def add_org_token(self, name: str, token_hash: str, *, at: datetime) -> None:
        with self._db.transaction("add_org_token", write=True):
            self._require_organisation(name)
            self._db.run(
                "INSERT INTO org_token (token_hash, organisation, created_at) VALUES (?, ?, ?)",
                (token_hash, name, self._db.ts(at)),
            )

    def organisation_of_token(self, token_hash: str) -> str | None:
        with self._db.transaction("organisation_of_token", write=False):
            rows = self._db.query(
                "SELECT organisation FROM org_token WHERE token_hash = ?", (token_hash,)
            )
            return str(rows[0][0]) if rows else None

    def set_owner(self, name: str, station_id: str, *, owned: bool) -> None:
        with self._db.transaction("set_owner", write=True):
            self._require_organisation(name)
            if owned:
                self._db.run(
                    "INSERT INTO org_station (organisation, station_id) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (name, station_id),
                )
            else:
                self._db.run(
                    "DELETE FROM org_station WHERE organisation = ? AND station_id = ?",
                    (name, station_id),
                )

    def set_grant(self, name: str, station_id: str, right: str, *, granted: bool) -> None:
        with self._db.transaction("set_grant", write=True):
            self._require_organisation(name)
            if granted:
                self._db.run(
                    "INSERT INTO org_grant (organisation, station_id, function) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (name, station_id, right),
                )
            else:
                self._db.run(
                    "DELETE FROM org_grant"
                    " WHERE organisation = ? AND station_id = ? AND function = ?",
                    (name, station_id, right),
                )

    def station_rights(self, name: str, station_id: str) -> tuple[bool, frozenset[str]]:
        """(owns the station, rights granted on it)."""
        with self._db.transaction("station_rights", write=False):
            owned = self._db.query(
                "SELECT 1 FROM org_station WHERE organisation = ? AND station_id = ?",
                (name, station_id),
            )
            granted = self._db.query(
                "SELECT function FROM org_grant WHERE organisation = ? AND station_id = ?",
                (name, station_id),
            )
            return bool(owned), frozenset(row[0] for row in granted)

    def set_webhook(
        self, name: str, url: str | None, *, at: datetime, secret: str | None = None
    ) -> None:
        """Set (or with None, remove) the organisation's webhook and its signing secret."""
        with self._db.transaction("set_webhook", write=True):
            self._require_organisation(name)
            if url is None:
                self._db.run("DELETE FROM org_webhook WHERE organisation = ?", (name,))
                return
            self._db.run(
                "INSERT INTO org_webhook (organisation, url, updated_at, secret)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (organisation) DO UPDATE SET url = excluded.url,"
                " updated_at = excluded.updated_at, secret = excluded.secret",
                (name, url, self._db.ts(at), secret),
            )

    # -- webhook deliveries

    def pending_deliveries(self, *, limit: int = 100) -> list[Delivery]:
        """Pending deliveries, the earliest due first."""
        with self._db.transaction("pending_deliveries", write=False):
            rows = self._db.query(
                "SELECT correlation_id, organisation, url, body, attempts, next_at, secret"
                " FROM webhook_delivery WHERE state = 'pending' ORDER BY next_at LIMIT ?",
                (limit,),
            )
        return [
            Delivery(
                correlation_id=cid,
                organisation=org,
                url=url,
                body=json.loads(body),
                attempts=int(attempts),
                next_at=self._db.from_ts(next_at),
                secret=secret,
            )
            for cid, org, url, body, attempts, next_at, secret in rows
        ]

    def record_delivery(
        self,
        correlation_id: str,
        *,
        delivered: bool,
        at: datetime,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        """One delivery attempt: delivered; failed for good (`next_at` None); or to retry."""
        state = "delivered" if delivered else ("pending" if next_at is not None else "failed")
        with self._db.transaction("record_delivery", write=True):
            self._db.run(
                "UPDATE webhook_delivery SET state = ?, attempts = attempts + 1,"
                " next_at = COALESCE(?, next_at), last_error = ?, delivered_at = ?"
                " WHERE correlation_id = ?",
                (
                    state,
                    self._db.opt_ts(next_at),
                    error,
                    self._db.ts(at) if delivered else None,
                    correlation_id,
                ),
            )

    def delivery_state(self, correlation_id: str) -> tuple[str, int, str | None] | None:
        """(state, attempts, last error) of a result's notification, if any."""
        with self._db.transaction("delivery_state", write=False):
            rows = self._db.query(
                "SELECT state, attempts, last_error FROM webhook_delivery WHERE correlation_id = ?",
                (correlation_id,),
            )
            return (str(rows[0][0]), int(rows[0][1]), rows[0][2]) if rows else None


class AsyncCommandStoreMixin:
    """`CommandStoreMixin`'s methods on `AsyncStore`, each run in the store's thread."""

    if TYPE_CHECKING:
        _store: Any

        async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

    @property
    def _commands(self) -> CommandStoreMixin:
        store = self._store
        if not isinstance(store, CommandStoreMixin):
            raise TypeError(f"{type(store).__name__} keeps no command queue")
        return store

    async def submit_command(self, new: NewCommand, *, at: datetime) -> CommandRecord:
        return await self._call(self._commands.submit_command, new, at=at)

    async def get_command(self, correlation_id: str) -> CommandRecord | None:
        return await self._call(self._commands.get_command, correlation_id)

    async def list_commands(
        self,
        *,
        station_id: str | None = None,
        organisation: str | None = None,
        status: CommandStatus | None = None,
        limit: int = 100,
    ) -> list[CommandRecord]:
        return await self._call(
            self._commands.list_commands,
            station_id=station_id,
            organisation=organisation,
            status=status,
            limit=limit,
        )

    async def queued_commands(self) -> list[CommandRecord]:
        return await self._call(self._commands.queued_commands)

    async def start_attempt(self, correlation_id: str, *, at: datetime) -> CommandRecord | None:
        return await self._call(self._commands.start_attempt, correlation_id, at=at)

    async def record_operation(
        self,
        correlation_id: str,
        position: int,
        *,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        await self._call(
            self._commands.record_operation,
            correlation_id,
            position,
            result=result,
            error=error,
            at=at,
        )

    async def finish_attempt(
        self,
        correlation_id: str,
        *,
        status: CommandStatus,
        retry_at: datetime | None = None,
        at: datetime,
        only_if: CommandStatus = CommandStatus.RUNNING,
    ) -> CommandRecord | None:
        return await self._call(
            self._commands.finish_attempt,
            correlation_id,
            status=status,
            retry_at=retry_at,
            at=at,
            only_if=only_if,
        )

    async def recover_interrupted(self, *, at: datetime) -> list[CommandRecord]:
        return await self._call(self._commands.recover_interrupted, at=at)

    async def record_audit(
        self,
        *,
        at: datetime,
        actor: str,
        station_id: str,
        what: Sequence[str],
        outcome: str,
        detail: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        await self._call(
            self._commands.record_audit,
            at=at,
            actor=actor,
            station_id=station_id,
            what=what,
            outcome=outcome,
            detail=detail,
            correlation_id=correlation_id,
        )

    async def audit_trail(
        self, *, station_id: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        return await self._call(
            self._commands.audit_trail, station_id=station_id, actor=actor, limit=limit
        )

    async def add_organisation(self, name: str, *, at: datetime) -> Organisation:
        return await self._call(self._commands.add_organisation, name, at=at)

    async def get_organisation(self, name: str) -> Organisation | None:
        return await self._call(self._commands.get_organisation, name)

    async def list_organisations(self) -> list[Organisation]:
        return await self._call(self._commands.list_organisations)

    async def add_org_token(self, name: str, token_hash: str, *, at: datetime) -> None:
        await self._call(self._commands.add_org_token, name, token_hash, at=at)

    async def organisation_of_token(self, token_hash: str) -> str | None:
        return await self._call(self._commands.organisation_of_token, token_hash)

    async def set_owner(self, name: str, station_id: str, *, owned: bool) -> None:
        await self._call(self._commands.set_owner, name, station_id, owned=owned)

    async def set_grant(self, name: str, station_id: str, right: str, *, granted: bool) -> None:
        await self._call(self._commands.set_grant, name, station_id, right, granted=granted)

    async def station_rights(self, name: str, station_id: str) -> tuple[bool, frozenset[str]]:
        return await self._call(self._commands.station_rights, name, station_id)

    async def set_webhook(
        self, name: str, url: str | None, *, at: datetime, secret: str | None = None
    ) -> None:
        await self._call(self._commands.set_webhook, name, url, at=at, secret=secret)

    async def pending_deliveries(self, *, limit: int = 100) -> list[Delivery]:
        return await self._call(self._commands.pending_deliveries, limit=limit)

    async def record_delivery(
        self,
        correlation_id: str,
        *,
        delivered: bool,
        at: datetime,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        await self._call(
            self._commands.record_delivery,
            correlation_id,
            delivered=delivered,
            at=at,
            error=error,
            next_at=next_at,
        )

    async def delivery_state(self, correlation_id: str) -> tuple[str, int, str | None] | None:
        return await self._call(self._commands.delivery_state, correlation_id)
