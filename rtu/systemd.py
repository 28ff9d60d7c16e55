"""systemd integration: sd_notify(3) spoken directly, and the watchdog loop.

The protocol is one datagram of newline-separated `KEY=value` assignments to
the AF_UNIX socket named by `$NOTIFY_SOCKET` (a path, or an abstract-namespace
name when it starts with '@'). Writing it ourselves avoids a C dependency for
a dozen lines. Without `$NOTIFY_SOCKET` (run by hand, in tests, in the HIL rig)
every call is a no-op.

The unit (systemd/rtu.service) is `Type=notify`, `WatchdogSec=30`:
- `ready()` once state is restored and the loops run (systemd waits for it);
- `watchdog()` at half the period, only while the loops are healthy: a hung
  event loop or a dead supervisor stops the pings and systemd restarts us;
- `status(text)` shows link state and queue depth in `systemctl status`;
- `stopping()` when an orderly shutdown begins.

A failure to notify is logged, never raised: losing a STATUS line must not take
the daemon down (and a lost watchdog ping is what the watchdog is for). Nor may
it stall the daemon: the datagram is sent without blocking, because a receiver
that stops reading (a wedged manager, a test harness that only waits for READY)
fills the socket's queue, and a blocking send would then freeze the event loop,
and with it the lights, for good.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "environ_notifier", "watchdog_loop"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; build it with `from_environ(os.environ, os.getpid())`."""

    def __init__(self, socket_name: str | None, watchdog_usec: int | None = None) -> None:
        self._address: str | None = None
        if socket_name and socket_name.startswith("@"):
            self._address = "\0" + socket_name[1:]  # Linux abstract namespace
        elif socket_name and socket_name.startswith("/"):
            self._address = socket_name
        elif socket_name:
            log.warning("ignoring NOTIFY_SOCKET=%r: neither a path nor '@name'", socket_name)
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._failing = False  # the last send failed: say so once, not every time

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int) -> Notifier:
        """Read `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (sd_watchdog_enabled(3)).

        A WATCHDOG_PID naming another process means the watchdog is not ours
        (the variable leaked into a child's environment).
        """
        usec: int | None = None
        raw_usec = environ.get("WATCHDOG_USEC", "")
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        if raw_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(pid)):
            usec = int(raw_usec)
        return cls(environ.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the period, as sd_watchdog_enabled(3) advises."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def notify(self, message: str) -> bool:
        """Send one raw message; True if it was handed to the socket (or there is none)."""
        if self._address is None:
            return True
        kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            with socket.socket(socket.AF_UNIX, kind) as sock:
                sock.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            if not self._failing:
                log.warning("sd_notify %r failed: %s", message.split("\n", 1)[0], exc)
            self._failing = True
            return False
        if self._failing:
            log.info("sd_notify works again")
            self._failing = False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        # One assignment per line: a newline in the text would end it early.
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")


async def watchdog_loop(notifier: Notifier, healthy: Callable[[], bool]) -> None:
    """Ping the watchdog at half its period while `healthy()`; return if it is off.

    `healthy` is the supervisor's verdict on its loops. When it says no, the
    pings stop and systemd restarts the daemon after WatchdogSec.
    """
    interval = notifier.watchdog_interval
    if interval is None:
        return
    was_healthy = True
    while True:
        is_healthy = healthy()
        if is_healthy:
            notifier.watchdog()
        elif was_healthy:
            log.error("loops unhealthy: stopping watchdog pings, systemd will restart us")
        was_healthy = is_healthy
        await asyncio.sleep(interval)


def environ_notifier() -> Notifier:
    """The notifier for this process (reads os.environ once, at the call)."""
    return Notifier.from_environ(os.environ, os.getpid())
