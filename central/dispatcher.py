"""The command queue's runtime: submission, the dispatch loop, results, notifications.

Theory of operation
-------------------
`submit` checks the request completely before anything is stored — every
operation known (`central.operations`), the caller holding every right it needs
(`central.orgs`), every OS³P payload valid against its request schema — then
stores the command `queued` (one transaction, with its audit row). A refused
request is audited and nothing reaches the station.

`dispatch_loop` is the only place commands start. Each round it asks the pure
planner (`central.queueing.plan`) what to start and what to expire, then sleeps
until woken — by a submission, a finished
attempt, a station connecting (`CentralServer.connect_listeners`) — or until the
planner's `wake_at` (a schedule time, a backoff's end, a deadline).

An attempt (`_attempt`) marks the command running (committed before anything is
sent), then runs its pending operations in order over the station's connection
of that moment: if the station reconnects mid-bundle, the rest fail as
`StationNotConnected` rather than run on another connection. Each operation's
result or error is committed as soon as it is known; the planner's
`after_attempt` decides what follows (done, retry with backoff, failed,
expired). A retry runs only the operations not done.

Retryable failures: the station offline or lost, no answer in time, a CALLERROR
`InternalError` (the station's own transient failure). Not retried: anything the
station refused on purpose (NotSupported, SecurityError, ...), an invalid answer.

A crash or stop leaves an attempt `running`; the next start re-queues it (or
fails it, with `bypassRetry`: one attempt means at most one).

The planner's input is kept in memory (`_queued`: the queued commands as
`Candidate`s), loaded from the store at start and after a storage error, and
updated on every submission, start and outcome. The store stays the record;
memory only spares each round a read of the whole queue — with 5,000 commands
waiting that read took 80 ms, and a round runs per submission and completion.

Final results wake the synchronous waiters (`wait`) and the webhook notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from central.errors import (
    CommandError,
    CommandRejected,
    CommandTimeout,
    InvalidCommand,
    InvalidStationResponse,
    StationNotConnected,
    UnknownCommand,
)
from central.logs import log_event
from central.operations import ServiceRegistry, UnknownOperation, right_of
from central.orgs import Forbidden, Principal, missing_rights
from central.queueing import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    Candidate,
    CommandStatus,
    QueuePolicy,
    after_attempt,
    plan,
)
from central.storage import StorageError
from central.storage.commands import CommandRecord, NewCommand
from central.webhooks import Notifier, WebhookPolicy
from os3p.actions import Action
from os3p.errors import PayloadError, PayloadInvalid
from os3p.messages import MESSAGE_TYPES, from_payload, to_payload

if TYPE_CHECKING:
    from central.server import CentralServer

__all__ = [
    "Dispatcher",
    "InvalidRequest",
    "Operation",
    "Submission",
    "UnknownOperation",
    "error_json",
    "retryable",
]

log = logging.getLogger(__name__)

# The longest the loop sleeps without reading the queue (a clock step, a missed wake).
_MAX_SLEEP = 60.0
# Validates a GetFile request that has no `location` yet: the real upload location is
# issued when the command runs (upload tokens live in memory and for 24 h only).
_PLACEHOLDER_LOCATION = "http://placeholder.invalid/upload"


@dataclass(frozen=True)
class Operation:
    action: str  # an OS³P central-initiated action or a registered service
    payload: dict[str, Any]


@dataclass(frozen=True)
class Submission:
    station_id: str
    operations: tuple[Operation, ...]
    priority: int = DEFAULT_PRIORITY
    schedule_time: datetime | None = None
    deadline: datetime | None = None
    bypass_retry: bool = False


class InvalidRequest(Exception):
    """The request itself is wrong (400); `position` names the operation, if one."""

    def __init__(self, message: str, *, position: int | None = None, code: str | None = None):
        super().__init__(message)
        self.position = position
        self.code = code


def error_json(exc: CommandError) -> dict[str, Any]:
    """A command error as stored with the operation (and answered by the API)."""
    match exc:
        case UnknownCommand():
            return {"error": "unknown_action", "message": exc.reason}
        case InvalidCommand():
            return {"error": "invalid_payload", "message": exc.description, "code": exc.code}
        case StationNotConnected():
            return {"error": "station_offline", "message": exc.reason}
        case CommandTimeout():
            return {"error": "timeout", "message": exc.reason}
        case CommandRejected():
            return {
                "error": "callerror",
                "message": exc.reason,
                "code": exc.code,
                "description": exc.description,
                "details": exc.details,
            }
        case InvalidStationResponse():
            return {"error": "invalid_response", "message": exc.reason}
        case _:
            return {"error": "command_failed", "message": exc.reason}


def retryable(exc: CommandError) -> bool:
    if isinstance(exc, StationNotConnected | CommandTimeout):
        return True
    return isinstance(exc, CommandRejected) and exc.code == "InternalError"


# A station connected before the dispatcher started: its connection waives no backoff.
_CONNECTED_BEFORE_START = datetime.min.replace(tzinfo=UTC)


def _candidate(record: CommandRecord) -> Candidate:
    return Candidate(
        correlation_id=record.correlation_id,
        station_id=record.station_id,
        priority=record.priority,
        seq=record.seq,
        schedule_time=record.schedule_time,
        deadline=record.deadline,
        retry_at=record.retry_at,
        last_attempt_at=record.last_attempt_at,
    )


class Dispatcher:
    def __init__(
        self,
        central: CentralServer,
        *,
        services: ServiceRegistry | None = None,
        policy: QueuePolicy = QueuePolicy(),  # noqa: B008 (frozen)
        webhooks: WebhookPolicy = WebhookPolicy(),  # noqa: B008 (frozen)
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.central = central
        self.services: ServiceRegistry = dict(services or {})
        self.policy = policy
        self._store = central.store
        self._wall = central.wall
        self._new_id = new_id
        self.notifier = Notifier(central.store, central.wall, webhooks)
        self._wake = asyncio.Event()
        self._running: dict[str, str] = {}  # correlation id → station
        self._queued: dict[str, Candidate] = {}
        self._resync = True  # load `_queued` from the store at the next round
        self._connected_since: dict[str, datetime] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        for record in await self._store.recover_interrupted(at=self._wall()):
            self._finished(record)
        self.central.connect_listeners.append(self._on_connect)
        self._task = asyncio.create_task(self._main(), name="central-commands")
        self._task.add_done_callback(self._log_end)

    @staticmethod
    def _log_end(task: asyncio.Task[None]) -> None:
        # Only a bug ends the loops before stop(); say so at once, not at shutdown.
        if not task.cancelled() and task.exception() is not None:
            log.critical("the command queue stopped", exc_info=task.exception())

    async def stop(self) -> None:
        """Stop dispatching; an attempt in flight is cancelled and stays `running`
        in the store, to be re-queued at the next start."""
        with contextlib.suppress(ValueError):
            self.central.connect_listeners.remove(self._on_connect)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _main(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.notifier.run_loop(), name="central-webhooks")
            tasks.create_task(self.dispatch_loop(tasks), name="central-dispatch")

    def _on_connect(self, station_id: str) -> None:
        self._connected_since[station_id] = self._wall()
        self._wake.set()

    # ----------------------------------------------------------------- submission
    def _check_operation(self, station_id: str, position: int, op: Operation) -> None:
        service = self.services.get(op.action)
        if service is not None:
            if service.check is not None:
                try:
                    service.check(op.payload)
                except ValueError as exc:
                    raise InvalidRequest(f"{op.action}: {exc}", position=position) from None
            return
        action = Action(op.action)  # right_of has established that it is one
        body = dict(op.payload)
        if action is Action.GET_FILE and "location" not in body:
            body["location"] = _PLACEHOLDER_LOCATION
        try:
            self.central.validator.check(action, "Request", body)
            from_payload(MESSAGE_TYPES[action][0], body)
        except PayloadInvalid as exc:
            raise InvalidRequest(
                f"{op.action}: {exc}", position=position, code=exc.code.value
            ) from None
        except PayloadError as exc:
            raise InvalidRequest(
                f"{op.action}: {exc}", position=position, code="FormationViolation"
            ) from None

    def _matchable(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A GetFile for the central's own file server gets its `requestId` now, stored
        with the command, so the operator can match the upload and its notifications
        (the Commander would otherwise make one up at send time, seen by nobody)."""
        if action != "GetFile" or "location" in payload or "requestId" in payload:
            return payload
        return {**payload, "requestId": self._new_id()}

    async def submit(self, principal: Principal, submission: Submission) -> CommandRecord:
        """Check and queue; InvalidRequest, UnknownOperation or Forbidden otherwise."""
        sid = submission.station_id
        names = [op.action for op in submission.operations]
        if not submission.operations:
            raise InvalidRequest("operations: at least one")
        if not 0 <= submission.priority <= MAX_PRIORITY:
            raise InvalidRequest(f"priority: an integer 0..{MAX_PRIORITY}")
        needed = {right_of(name, self.services) for name in names}  # UnknownOperation
        # Rights before payloads: a caller without the right learns nothing more.
        if principal.organisation is not None:
            owner, granted = await self._store.station_rights(principal.organisation, sid)
            missing = missing_rights(needed, owner=owner, granted=granted)
            if missing:
                await self._store.record_audit(
                    at=self._wall(),
                    actor=principal.actor,
                    station_id=sid,
                    what=names,
                    outcome="forbidden",
                    detail="missing " + ", ".join(sorted(str(r) for r in missing)),
                )
                raise Forbidden(principal, sid, missing)
        for position, op in enumerate(submission.operations):
            self._check_operation(sid, position, op)
        record = await self._store.submit_command(
            NewCommand(
                correlation_id=self._new_id(),
                station_id=sid,
                organisation=principal.organisation,
                priority=submission.priority,
                schedule_time=submission.schedule_time,
                deadline=submission.deadline,
                bypass_retry=submission.bypass_retry,
                operations=tuple(
                    (op.action, self._matchable(op.action, op.payload))
                    for op in submission.operations
                ),
            ),
            at=self._wall(),
        )
        self._queued[record.correlation_id] = _candidate(record)
        log_event(
            log,
            logging.INFO,
            "command_queued",
            station=sid,
            correlation=record.correlation_id,
            actor=principal.actor,
            operations=",".join(names),
            priority=record.priority,
        )
        self._wake.set()
        return record

    async def wait(self, correlation_id: str, timeout: float) -> CommandRecord | None:
        """The command once final, or as it stands after `timeout` seconds."""
        event = self._waiters.setdefault(correlation_id, asyncio.Event())
        try:
            record = await self._store.get_command(correlation_id)
            if record is None or record.status.final:
                return record
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
            return await self._store.get_command(correlation_id)
        finally:
            self._waiters.pop(correlation_id, None)

    def _finished(self, record: CommandRecord) -> None:
        waiter = self._waiters.get(record.correlation_id)
        if waiter is not None:
            waiter.set()
        self.notifier.wake()
        log_event(
            log,
            logging.INFO if record.status is CommandStatus.DONE else logging.WARNING,
            "command_finished",
            station=record.station_id,
            correlation=record.correlation_id,
            status=str(record.status),
            attempts=record.attempts,
        )

    # ----------------------------------------------------------------- dispatching
    def wake(self) -> None:
        self._wake.set()

    async def dispatch_loop(self, tasks: asyncio.TaskGroup) -> None:
        while True:
            self._wake.clear()
            try:
                wake_at = await self._dispatch_round(tasks)
            except StorageError as exc:
                self._resync = True
                log_event(log, logging.ERROR, "queue_store_failed", station=None, error=exc)
                await asyncio.sleep(1.0)
                continue
            sleep = _MAX_SLEEP
            if wake_at is not None:
                sleep = min(sleep, max(0.0, (wake_at - self._wall()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._wake.wait()

    async def _dispatch_round(self, tasks: asyncio.TaskGroup) -> datetime | None:
        if self._resync:
            # Merged, not replaced: a submission may commit while this read runs. An
            # entry that is no longer queued in the store is harmless: starting or
            # expiring it finds nothing to move, and it is dropped.
            fresh = await self._store.queued_commands()
            self._queued.update(
                (c.correlation_id, _candidate(c))
                for c in fresh
                if c.correlation_id not in self._running
            )
            self._resync = False
        now = self._wall()
        # Only the stations with queued commands: every connect wakes this loop, and
        # 10,000 stations reconnecting after a restart must not cost 10,000² steps.
        waiting = {c.station_id for c in self._queued.values()}
        connected = {
            sid: self._connected_since.get(sid, _CONNECTED_BEFORE_START)
            for sid in waiting
            if self.central.connected(sid)
        }
        decision = plan(
            self._queued.values(),
            now=now,
            busy_stations=set(self._running.values()),
            in_flight=len(self._running),
            policy=self.policy,
            connected_since=connected,
        )
        for candidate in decision.expire:
            record = await self._store.finish_attempt(
                candidate.correlation_id,
                status=CommandStatus.EXPIRED,
                at=now,
                only_if=CommandStatus.QUEUED,
            )
            self._queued.pop(candidate.correlation_id, None)
            if record is not None:
                self._finished(record)
        for candidate in decision.start:
            del self._queued[candidate.correlation_id]
            self._running[candidate.correlation_id] = candidate.station_id
            tasks.create_task(
                self._attempt(candidate.correlation_id),
                name=f"central-command-{candidate.correlation_id}",
            )
        return decision.wake_at

    async def _attempt(self, correlation_id: str) -> None:
        """Every failure ends here, logged: a command's task never takes the loop down."""
        try:
            record = await self._store.start_attempt(correlation_id, at=self._wall())
            if record is not None:
                await self._run(record)
        except StorageError as exc:
            # The command stays as the store last saw it (running: re-queued at restart);
            # what is queued is read again from the store.
            self._resync = True
            log_event(
                log,
                logging.ERROR,
                "command_store_failed",
                station=self._running.get(correlation_id),
                correlation=correlation_id,
                error=exc,
            )
        except Exception:
            # Our bug: logged with its traceback; the other commands carry on.
            self._resync = True
            log.exception("command %s: attempt failed", correlation_id)
        finally:
            self._running.pop(correlation_id, None)
            self._wake.set()

    async def _run(self, record: CommandRecord) -> None:
        sid = record.station_id
        link = self.central.links.get(sid)
        connection_id = None if link is None else link.ctx.connection_id
        failures: list[bool] = []  # retryable?
        for op in record.operations:
            if op.status == "done":
                continue
            result: dict[str, Any] | None = None
            error: dict[str, Any] | None = None
            try:
                self._check_same_connection(sid, op.name, connection_id)
                result = await self._run_operation(sid, op.name, op.params)
            except CommandError as exc:
                error = error_json(exc)
                failures.append(retryable(exc))
            except Exception as exc:  # a registered service's bug: recorded, not retried
                log.exception("service %s failed on %s", op.name, sid)
                error = {"error": "service_failed", "message": f"{type(exc).__name__}: {exc}"}
                failures.append(False)
            await self._store.record_operation(
                record.correlation_id, op.position, result=result, error=error, at=self._wall()
            )
        now = self._wall()
        verdict = after_attempt(
            succeeded=not failures,
            retryable=all(failures),
            attempts=record.attempts,
            bypass_retry=record.bypass_retry,
            deadline=record.deadline,
            now=now,
            policy=self.policy,
        )
        final = await self._store.finish_attempt(
            record.correlation_id, status=verdict.status, retry_at=verdict.retry_at, at=now
        )
        if final is None:
            return
        if final.status.final:
            self._finished(final)
        else:
            self._queued[final.correlation_id] = _candidate(final)

    def _check_same_connection(self, station_id: str, name: str, expected: str | None) -> None:
        """A bundle runs over one connection: a reconnect ends it (the rest is retried)."""
        current = self.central.links.get(station_id)
        if (None if current is None else current.ctx.connection_id) != expected:
            raise StationNotConnected(station_id, name, "the connection changed in the bundle")

    async def _run_operation(
        self, station_id: str, name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        service = self.services.get(name)
        if service is not None:
            result: dict[str, Any] = await service.run(self.central, station_id, params)
            return result
        response = await self.central.commander.send(station_id, name, params)
        payload: dict[str, Any] = to_payload(response)
        return payload

    def running(self) -> Sequence[str]:
        """Correlation ids in flight (for the operator's view and tests)."""
        return list(self._running)
