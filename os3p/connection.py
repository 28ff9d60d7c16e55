"""The asyncio shell around one `Session`: a websockets connection, handlers, timers.

One receive loop feeds every message to the session; one send path
(`_flush`) writes whatever the session queued, in order. Handlers of received
CALLs start inline and continue as tasks owned by the connection's TaskGroup
if they suspend (serial ones: in the receive loop): a handler that raises is
answered with InternalError and logged, never lost. Our own CALLs wait on
futures that the session's events resolve.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

import msgspec
from websockets.asyncio.connection import Connection as WebSocket
from websockets.exceptions import ConnectionClosed

from os3p.actions import Action
from os3p.errors import ConnectionLost, ErrorCode, HandlerError, OutgoingInvalid
from os3p.router import Router
from os3p.session import (
    CallCompleted,
    CallFailedEvent,
    CallReceived,
    Event,
    PeerViolation,
    Session,
    UnmatchedResponse,
)

__all__ = ["Connection"]


class _Resume:
    """Awaitable that carries on driving a coroutine started by hand with `send(None)`.

    `yielded` is what the coroutine gave back when it suspended (the future it waits
    for); the awaiting task blocks on it exactly as if it had run the coroutine from
    the start. This is the delegation `yield from` does, for a coroutine already begun.
    """

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        value = self._yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                self._coro.close()
                raise
            except BaseException as exc:  # cancellation included: hand it to the handler
                try:
                    value = self._coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = self._coro.send(sent)
                except StopIteration:
                    return


Ctx = TypeVar("Ctx")
Resp = TypeVar("Resp", bound=msgspec.Struct)

log = logging.getLogger(__name__)


class Connection(Generic[Ctx]):
    """Runs OS³P over one open websocket until it closes."""

    def __init__(
        self,
        websocket: WebSocket,
        session: Session,
        router: Router[Ctx],
        ctx: Ctx,
        *,
        peer: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.websocket = websocket
        self.session = session
        self.peer = peer  # the station id: every log line names it
        self._router = router
        self._ctx = ctx
        self._clock = clock
        self._waiters: dict[str, asyncio.Future[msgspec.Struct]] = {}
        self._send_lock = asyncio.Lock()
        self._deadline_changed = asyncio.Event()
        self._closed = False
        self.violations = 0  # frames the peer got wrong (answered or ignored)

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self) -> None:
        """Serve the connection until the websocket closes; pending calls then fail."""
        try:
            async with asyncio.TaskGroup() as tasks:
                timer = tasks.create_task(self._timer_loop(), name=f"os3p-timer-{self.peer}")
                try:
                    async for message in self.websocket:
                        for event in self.session.receive(message, self._clock()):
                            serial = self._on_event(event, tasks)
                            if serial is not None:
                                await serial
                        await self._flush()
                except ConnectionClosed as exc:
                    log.info("%s: connection lost: %s", self.peer, exc)
                finally:
                    timer.cancel()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        for event in self.session.close():
            self._on_event(event, None)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost("connection closed"))
        self._waiters.clear()

    def _on_event(self, event: Event, tasks: asyncio.TaskGroup | None) -> _Resume | None:
        """Act on one session event; returns a suspended serial handler to await."""
        match event:
            case CallReceived():
                if tasks is not None:
                    return self._start_handler(event, tasks)
            case CallCompleted(message_id=message_id, response=response):
                waiter = self._waiters.pop(message_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(response)
            case CallFailedEvent(message_id=message_id, error=error):
                waiter = self._waiters.pop(message_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(error)
            case PeerViolation(message_id=message_id, answered=code, reason=reason):
                self.violations += 1
                outcome = f"answered {code}" if code else "ignored"
                log.warning("%s: bad frame %s (%s): %s", self.peer, message_id, outcome, reason)
            case UnmatchedResponse(message_id=message_id, reason=reason):
                log.warning(
                    "%s: dropped %s: %s (late after timeout?)", self.peer, message_id, reason
                )
        return None

    def _start_handler(self, event: CallReceived, tasks: asyncio.TaskGroup) -> _Resume | None:
        """Run the handler inline; only if it suspends does it continue as a task.

        Most handlers answer from memory or after one database call. Run inline, a
        handler that does not suspend has queued its answer before the receive loop's
        next flush, without the cost of a task per CALL (the largest part of the
        central's per-message overhead). One that suspends is resumed by a task in
        the connection's TaskGroup, exactly where it stopped, and flushes itself;
        a serial one (`Router.add`) is handed back for the receive loop to await.
        """
        coro = self._answer(event)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return None
        except BaseException:
            coro.close()
            raise
        if self._router.is_serial(event.action):
            return _Resume(coro, yielded)

        async def finish() -> None:
            await _Resume(coro, yielded)
            await self._flush()

        tasks.create_task(finish(), name=f"os3p-{event.action}")
        return None

    async def _answer(self, event: CallReceived) -> None:
        """Dispatch one CALL and queue its answer (the caller flushes)."""
        try:
            response = await self._router.dispatch(event.action, event.request, self._ctx)
            self.session.reply(event.message_id, response)
        except HandlerError as exc:
            self._reply_error(event, exc.code, exc.description, exc.details)
        except (TypeError, OutgoingInvalid):
            log.exception("%s: our answer to %s is invalid", self.peer, event.action)
            self._reply_error(event, ErrorCode.INTERNAL_ERROR, "invalid response")
        except Exception:
            log.exception("%s: handler for %s failed", self.peer, event.action)
            self._reply_error(event, ErrorCode.INTERNAL_ERROR, "handler failed")

    def _reply_error(
        self,
        event: CallReceived,
        code: ErrorCode,
        text: str,
        details: dict[str, object] | None = None,
    ) -> None:
        if event.message_id in self.session.handling:
            self.session.reply_error(event.message_id, code, text, dict(details or {}))

    async def _flush(self) -> None:
        # The one send path: frames leave in the order the session queued them.
        async with self._send_lock:
            for text in self.session.data_to_send():
                try:
                    await self.websocket.send(text)
                except ConnectionClosed:
                    return

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.session.next_deadline()
            self._deadline_changed.clear()
            delay = None if deadline is None else max(0.0, deadline - self._clock())
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a
                # cancellation that arrives as the inner wait completes.
                async with asyncio.timeout(delay):
                    await self._deadline_changed.wait()
            except TimeoutError:
                for event in self.session.expire(self._clock()):
                    self._on_event(event, None)
                await self._flush()

    async def call(
        self, request: msgspec.Struct, *, timeout: float | None = None
    ) -> msgspec.Struct:
        """Send a CALL and wait for its result; raises a CallFailed subclass otherwise."""
        if self._closed:
            raise ConnectionLost("connection closed")
        message_id = self.session.call(request, self._clock(), timeout=timeout)
        return await self._await_answer(message_id)

    async def _await_answer(self, message_id: str) -> msgspec.Struct:
        waiter: asyncio.Future[msgspec.Struct] = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = waiter
        self._deadline_changed.set()
        await self._flush()
        return await waiter

    async def call_raw(
        self, action: Action, payload_json: str, *, timeout: float | None = None
    ) -> msgspec.Struct:
        """`call` with a payload that is already-validated JSON text (see Session.call_raw)."""
        if self._closed:
            raise ConnectionLost("connection closed")
        message_id = self.session.call_raw(action, payload_json, self._clock(), timeout=timeout)
        return await self._await_answer(message_id)

    async def call_typed(
        self, request: msgspec.Struct, response_type: type[Resp], *, timeout: float | None = None
    ) -> Resp:
        """`call`, with the response narrowed to the type the caller expects."""
        response = await self.call(request, timeout=timeout)
        if not isinstance(response, response_type):
            raise TypeError(f"expected {response_type.__name__}, got {type(response).__name__}")
        return response

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.websocket.close(code, reason)
