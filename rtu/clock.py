"""The daemon's clock: system time corrected by the central system, and monotonic time.

OS³P §3.1: the station "MAY sync its internal clock on the currentTime field" of
BootNotification and Heartbeat answers. We keep the correction as an *offset*
instead of stepping the system clock (stepping is optional, see
`rtu.config` `system.set_system_clock`): every timestamp the daemon sends and
every schedule decision it makes uses `now()`, so a wrong RTC at boot without
network is corrected as soon as the central answers, and the last known offset
is persisted so schedules after a reboot without network use it too.

The offset is estimated as central time + half the round trip − local receive
time (the NTP idea, one sample): good to the asymmetry of the link, which is
far below the 1 s switching tolerance of the lights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


class Clock:
    """Wall time as the central sees it, plus monotonic seconds for timeouts."""

    def __init__(
        self,
        *,
        offset: timedelta = timedelta(0),
        system_time: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._offset = offset
        self._system_time = system_time
        self.monotonic = monotonic
        self._listeners: list[Callable[[timedelta], None]] = []

    @property
    def offset(self) -> timedelta:
        """How far the central's clock is ahead of ours."""
        return self._offset

    def now(self) -> datetime:
        """Corrected wall time, timezone-aware UTC: use for every timestamp and schedule."""
        return datetime.fromtimestamp(self._system_time(), UTC) + self._offset

    def system_now(self) -> datetime:
        return datetime.fromtimestamp(self._system_time(), UTC)

    def on_change(self, listener: Callable[[timedelta], None]) -> None:
        """Called with the new offset when a correction moves the clock (the scheduler
        recomputes on it)."""
        self._listeners.append(listener)

    def correct(
        self, central_time: datetime, *, sent_at: float, received_at: float, threshold: float = 0.5
    ) -> timedelta:
        """Apply `currentTime` of an answer to a CALL sent at monotonic `sent_at` and
        answered at `received_at`. Returns the offset change; corrections smaller than
        `threshold` seconds are ignored (jitter, not drift), so listeners are not woken
        by every heartbeat."""
        round_trip = max(0.0, received_at - sent_at)
        local = self.system_now() - timedelta(seconds=self.monotonic() - received_at)
        estimate = central_time + timedelta(seconds=round_trip / 2) - local
        change = estimate - self._offset
        if abs(change.total_seconds()) < threshold:
            return timedelta(0)
        self._offset = estimate
        for listener in self._listeners:
            listener(estimate)
        return change

    def set_offset(self, offset: timedelta) -> None:
        """Restore a persisted offset at start (no listeners yet) or after stepping the RTC."""
        self._offset = offset
