"""The P1 port of the streetlight supply meter: a `MeterSource` over pyserial.

Theory of operation. A DSMR meter talks without being asked: a telegram every
second (DSMR 5) or every ten (DSMR 2.2 to 4). So `P1Port` does not poll. Opening
the port starts a dedicated reader thread (DESIGN.md: serial I/O runs in its own
thread) that blocks in pyserial's `read`, feeds the bytes to the pure
`TelegramDecoder` and hands each outcome to the event loop with
`call_soon_threadsafe`; all state (latest telegram, counters, subscribers) is
touched on the loop only.

- `read()` answers from the latest good telegram if it is at most `max_age`
  seconds old; right after opening it waits up to `max_age` for the first one.
  Otherwise it raises `SourceError("no telegram for N s")`: a pulled cable is
  noticed within `max_age` and heals by itself when telegrams come back.
- Bad telegrams (CRC, parse) are counted (`counters`, shown by `rtu status`)
  and skipped; the latest good one stays.
- A line that goes away (USB adapter unplugged, pty closed) makes the next
  `read()` raise `SourceError` and close the port; the read after reopens it.
- `telegrams()` yields every good telegram as it arrives (latency measurement,
  live views); it ends when the port is closed.

pyserial and dsmr-parser exceptions become `SourceError` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Literal, Protocol

import serial

from rtu.metering.dsmr import DsmrVersion, Reading, Rejected, TelegramDecoder, telegram_interval
from rtu.metering.model import Sample, SourceError

__all__ = [
    "Clock",
    "P1Counters",
    "P1Port",
    "P1Settings",
    "P1Telegram",
    "SerialSettings",
    "SystemClock",
]

logger = logging.getLogger(__name__)

# Telegrams a slow `telegrams()` consumer may fall behind before the oldest are dropped.
_SUBSCRIBER_BACKLOG: Final = 64


class Clock(Protocol):
    """What the P1 port needs of the daemon's clock (`rtu.clock.Clock` fits)."""

    def now(self) -> datetime:
        """Corrected wall time, aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring ages and timeouts."""
        ...


class SystemClock:
    """The uncorrected system clock, for tools and benchmarks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclasses.dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings of the P1 port."""

    baudrate: int = 115200
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    @classmethod
    def for_version(cls, version: DsmrVersion) -> SerialSettings:
        """The P1 companion standards: 9600 7E1 up to DSMR 3, 115200 8N1 from DSMR 4."""
        if version in (DsmrVersion.V2_2, DsmrVersion.V3):
            return cls(baudrate=9600, bytesize=7, parity="E", stopbits=1)
        return cls()


@dataclasses.dataclass(frozen=True, slots=True)
class P1Settings:
    """Configuration of one P1 port (the `[metering.p1]` table of the config file)."""

    device: str  # e.g. /dev/ttyUSB0, or the simulator's pty
    version: DsmrVersion = DsmrVersion.V5
    serial: SerialSettings | None = None  # None: the version's standard settings
    max_age: float | None = None  # seconds; None: three telegram intervals
    name: str = "p1"

    @property
    def line(self) -> SerialSettings:
        return self.serial or SerialSettings.for_version(self.version)

    @property
    def freshness(self) -> float:
        """How old the latest telegram may be for `read()` to use it, in seconds."""
        return self.max_age if self.max_age is not None else 3 * telegram_interval(self.version)


@dataclasses.dataclass(frozen=True, slots=True)
class P1Counters:
    """Since the port object was made, across reconnects."""

    telegrams: int = 0  # good telegrams
    crc_errors: int = 0
    parse_errors: int = 0  # malformed telegrams and line noise


@dataclasses.dataclass(frozen=True, slots=True)
class P1Telegram:
    """One good telegram as the daemon sees it."""

    samples: tuple[Sample, ...]
    meter_time: datetime | None  # 0-0:1.0.0; None for DSMR 2.2 and 3
    received: float  # clock.monotonic() once parsed


@dataclasses.dataclass(frozen=True, slots=True)
class _LineLost:
    reason: str


_Outcome = P1Telegram | Rejected | _LineLost


class _Reader(threading.Thread):
    """Blocks in pyserial's read; decodes; hands every outcome to `deliver`."""

    def __init__(
        self,
        port: serial.Serial,
        decoder: TelegramDecoder,
        clock: Clock,
        deliver: Callable[[_Outcome], None],
    ) -> None:
        super().__init__(name=f"p1-reader {port.port}", daemon=True)
        self._port = port
        self._decoder = decoder
        self._clock = clock
        self._deliver = deliver
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._port.cancel_read()  # wakes the blocked read (pyserial's abort pipe)

    def run(self) -> None:
        try:
            while not self._stopping:
                # One byte blocks until the line speaks; then take what has come.
                data = self._port.read(max(1, self._port.in_waiting))
                for item in self._decoder.feed(data):
                    self._hand_over(self._stamp(item) if isinstance(item, Reading) else item)
        except (serial.SerialException, OSError) as exc:
            if not self._stopping:
                self._hand_over(_LineLost(f"line lost: {exc}"))
        except Exception as exc:
            # A bug of ours (the decoder never raises on peer input): log it,
            # and let read() report the port as failed instead of going silent.
            logger.exception("P1 reader on %s failed", self._port.port)
            self._hand_over(_LineLost(f"reader failed: {exc!r}"))

    def _hand_over(self, outcome: _Outcome) -> None:
        try:
            self._deliver(outcome)
        except RuntimeError:  # the event loop is closed: nobody listens any more
            self._stopping = True

    def _stamp(self, reading: Reading) -> P1Telegram:
        samples = tuple(reading.samples(self._clock.now()))
        return P1Telegram(samples, reading.meter_time, self._clock.monotonic())


@dataclasses.dataclass(slots=True)
class _Link:
    port: serial.Serial
    reader: _Reader
    opened_at: float
    changed: asyncio.Event  # set (and replaced) whenever an outcome arrives


class P1Port:
    """A `MeterSource` reading DSMR telegrams from a P1 port."""

    def __init__(self, settings: P1Settings, *, clock: Clock | None = None) -> None:
        self._settings = settings
        self._clock = clock or SystemClock()
        self._link: _Link | None = None
        self._opening = asyncio.Lock()
        self._latest: P1Telegram | None = None
        self._failure: SourceError | None = None
        self._counters = P1Counters()
        self._subscribers: set[asyncio.Queue[P1Telegram | SourceError | None]] = set()
        self._rejecting = False

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def counters(self) -> P1Counters:
        return self._counters

    async def __aenter__(self) -> P1Port:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the port now; `read()` and `telegrams()` open it when they need it."""
        await self._open()

    async def read(self) -> Sequence[Sample]:
        link = await self._open()
        while True:
            if self._link is not link:
                raise SourceError(self.name, "port closed while reading")
            if self._failure is not None:
                failure = self._failure
                await self.close()
                raise failure
            latest = self._latest
            since = latest.received if latest is not None else link.opened_at
            age = self._clock.monotonic() - since
            if age <= self._settings.freshness and latest is not None:
                return latest.samples
            if latest is None and age < self._settings.freshness:
                # Just opened: the meter speaks within one interval.
                try:
                    async with asyncio.timeout(self._settings.freshness - age):
                        await link.changed.wait()
                    continue
                except TimeoutError:
                    age = max(age, self._settings.freshness)
            raise SourceError(self.name, f"no telegram for {age:.1f} s")

    async def telegrams(self) -> AsyncGenerator[P1Telegram, None]:
        """Every good telegram from now on; ends when the port is closed."""
        await self._open()
        queue: asyncio.Queue[P1Telegram | SourceError | None] = asyncio.Queue(_SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:  # the port was closed
                    return
                if isinstance(item, SourceError):
                    raise item
                yield item
        finally:
            self._subscribers.discard(queue)

    async def close(self) -> None:
        link, self._link = self._link, None
        self._latest = None
        self._failure = None
        if link is None:
            return
        link.changed.set()  # a read() waiting for a first telegram gives up
        self._publish(None)  # ends the `telegrams()` iterators
        link.reader.stop()
        try:
            await asyncio.to_thread(link.reader.join)
        finally:
            link.port.close()

    # -- the loop side -----------------------------------------------------

    async def _open(self) -> _Link:
        async with self._opening:
            if self._link is not None:
                return self._link
            line = self._settings.line
            device = self._settings.device
            try:
                port = await asyncio.to_thread(
                    serial.Serial,
                    device,
                    baudrate=line.baudrate,
                    bytesize=line.bytesize,
                    parity=line.parity,
                    stopbits=line.stopbits,
                    timeout=None,
                    exclusive=True,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise SourceError(self.name, f"cannot open {device}: {exc}") from exc
            loop = asyncio.get_running_loop()
            decoder = TelegramDecoder(self._settings.version)

            def deliver(outcome: _Outcome) -> None:
                loop.call_soon_threadsafe(self._on_outcome, link, outcome)

            reader = _Reader(port, decoder, self._clock, deliver)
            link = _Link(port, reader, self._clock.monotonic(), asyncio.Event())
            self._link = link
            reader.start()
            logger.info("%s: reading DSMR %s on %s", self.name, self._settings.version, device)
            return link

    def _on_outcome(self, link: _Link, outcome: _Outcome) -> None:
        if link is not self._link:
            return  # from a reader stopped since
        counters = self._counters
        match outcome:
            case P1Telegram():
                self._counters = dataclasses.replace(counters, telegrams=counters.telegrams + 1)
                self._latest = outcome
                self._rejecting = False
                self._publish(outcome)
            case Rejected(kind="crc"):
                self._counters = dataclasses.replace(counters, crc_errors=counters.crc_errors + 1)
                self._log_rejection(outcome)
            case Rejected():
                self._counters = dataclasses.replace(
                    counters, parse_errors=counters.parse_errors + 1
                )
                self._log_rejection(outcome)
            case _LineLost(reason):
                logger.warning("%s: %s", self.name, reason)
                self._failure = SourceError(self.name, reason)
                self._publish(self._failure)
        link.changed.set()
        link.changed = asyncio.Event()

    def _log_rejection(self, rejected: Rejected) -> None:
        # A bad line rejects every telegram: say so once, count the rest.
        level = logging.DEBUG if self._rejecting else logging.WARNING
        logger.log(
            level, "%s: telegram skipped (%s): %s", self.name, rejected.kind, rejected.reason
        )
        self._rejecting = True

    def _publish(self, item: P1Telegram | SourceError | None) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a slow consumer loses the oldest, not the newest
            queue.put_nowait(item)
