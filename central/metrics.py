"""Prometheus metrics, written in the text exposition format (version 0.0.4) by hand.

Four families, as the operator needs them: connected stations (gauge), CALLs received
per action, CALLERRORs sent and received per code (counters), and the latency of
operator commands (histogram). `prometheus-client` is not a dependency: the format is
a few lines of text (https://prometheus.io/docs/instrumenting/exposition_formats/).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import Counter
from collections.abc import Callable

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# Seconds; a command is a round trip over a mobile link, so the buckets reach 30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclasses.dataclass
class _Histogram:
    buckets: list[int] = dataclasses.field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(self.buckets):
            self.buckets[index] += 1
        self.count += 1
        self.total += seconds


class Metrics:
    """Counters kept by the server; `render()` is what `/metrics` returns."""

    def __init__(self, connected: Callable[[], int]) -> None:
        self._connected = connected
        self.received: Counter[str] = Counter()  # action
        self.callerrors_sent: Counter[str] = Counter()  # code
        self.callerrors_received: Counter[str] = Counter()  # code
        self.commands: Counter[tuple[str, str]] = Counter()  # (action, outcome)
        self._latency: dict[str, _Histogram] = {}

    def observe_command(self, action: str, outcome: str, seconds: float) -> None:
        self.commands[action, outcome] += 1
        self._latency.setdefault(action, _Histogram()).observe(seconds)

    def render(self) -> str:
        lines = [
            "# HELP os3p_connected_stations Stations with an open OS3P connection.",
            "# TYPE os3p_connected_stations gauge",
            f"os3p_connected_stations {self._connected()}",
            "# HELP os3p_messages_received_total CALLs received from stations, per action.",
            "# TYPE os3p_messages_received_total counter",
        ]
        lines += [
            f'os3p_messages_received_total{{action="{_label(a)}"}} {n}'
            for a, n in sorted(self.received.items())
        ]
        lines += [
            "# HELP os3p_callerrors_sent_total CALLERRORs we answered stations with, per code.",
            "# TYPE os3p_callerrors_sent_total counter",
        ]
        lines += [
            f'os3p_callerrors_sent_total{{code="{_label(c)}"}} {n}'
            for c, n in sorted(self.callerrors_sent.items())
        ]
        lines += [
            "# HELP os3p_callerrors_received_total CALLERRORs stations answered commands with.",
            "# TYPE os3p_callerrors_received_total counter",
        ]
        lines += [
            f'os3p_callerrors_received_total{{code="{_label(c)}"}} {n}'
            for c, n in sorted(self.callerrors_received.items())
        ]
        lines += [
            "# HELP os3p_commands_total Operator commands, per action and outcome.",
            "# TYPE os3p_commands_total counter",
        ]
        lines += [
            f'os3p_commands_total{{action="{_label(a)}",outcome="{_label(o)}"}} {n}'
            for (a, o), n in sorted(self.commands.items())
        ]
        lines += [
            "# HELP os3p_command_latency_seconds Time from sending a command to its outcome.",
            "# TYPE os3p_command_latency_seconds histogram",
        ]
        for action, histogram in sorted(self._latency.items()):
            label = f'action="{_label(action)}"'
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, histogram.buckets, strict=True):
                cumulative += count
                lines.append(
                    f'os3p_command_latency_seconds_bucket{{{label},le="{bound:g}"}} {cumulative}'
                )
            lines.append(
                f'os3p_command_latency_seconds_bucket{{{label},le="+Inf"}} {histogram.count}'
            )
            lines.append(f"os3p_command_latency_seconds_sum{{{label}}} {histogram.total:.6f}")
            lines.append(f"os3p_command_latency_seconds_count{{{label}}} {histogram.count}")
        return "\n".join(lines) + "\n"
