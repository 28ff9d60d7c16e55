"""The Prometheus text exposition and the key=value log lines."""

from __future__ import annotations

import logging

import pytest

from central.logs import KeyValueFormatter, log_event
from central.metrics import Metrics


def test_exposition_format() -> None:
    metrics = Metrics(lambda: 3)
    metrics.received["Heartbeat"] += 2
    metrics.callerrors_sent["SecurityError"] += 1
    metrics.callerrors_received['Odd"Code'] += 1
    metrics.observe_command("Reset", "ok", 0.02)
    metrics.observe_command("Reset", "timeout", 31.0)
    lines = metrics.render().splitlines()
    assert "os3p_connected_stations 3" in lines
    assert 'os3p_messages_received_total{action="Heartbeat"} 2' in lines
    assert 'os3p_callerrors_sent_total{code="SecurityError"} 1' in lines
    assert 'os3p_callerrors_received_total{code="Odd\\"Code"} 1' in lines
    assert 'os3p_command_latency_seconds_bucket{action="Reset",le="0.01"} 0' in lines
    assert 'os3p_command_latency_seconds_bucket{action="Reset",le="0.025"} 1' in lines
    assert 'os3p_command_latency_seconds_bucket{action="Reset",le="30"} 1' in lines
    assert 'os3p_command_latency_seconds_bucket{action="Reset",le="+Inf"} 2' in lines
    assert 'os3p_command_latency_seconds_count{action="Reset"} 2' in lines
    assert all(line.startswith(("#", "os3p_")) for line in lines)


def test_log_lines_are_key_value_with_the_station(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("central.test")
    with caplog.at_level(logging.INFO, logger="central.test"):
        log_event(logger, logging.INFO, "boot", station="SUBS 1", answered="Accepted", info=None)
        logger.warning("SUBS001: bad frame")
    formatter = KeyValueFormatter()
    first, second = (formatter.format(r) for r in caplog.records)
    assert first.endswith('logger=central.test event=boot station="SUBS 1" answered=Accepted')
    assert first.startswith("ts=")
    assert second.endswith('level=WARNING logger=central.test msg="SUBS001: bad frame"')
