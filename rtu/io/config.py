"""The `[io]` section: how to reach the Modbus I/O module and how it is wired.

Shared by the lights controller and the MV fault monitor: one module, one
`IOPoller`, one section. Validated with `rtu.config.TableReader` like every
device section, so a typo names its key path (`io.map.contactors[1].coil`).

    [io]
    transport = "tcp"            # or "serial"
    host = "10.0.0.5"            # tcp
    port = 502                   # tcp
    # device = "/dev/ttyUSB0"    # serial (or socket://host:port through a gateway)
    # baudrate = 19200           # serial; parity "N"/"E"/"O", stopbits 1/2, bytesize 7/8
    timeout = 1.0                # seconds per request
    unit_id = 1
    poll_period = 0.03           # seconds between reads: input change to CALL ≈ this + ~10 ms
                                 # (p99 ≤ 50 ms); each poll costs ~0.03 % of a core
    retry = 1.0                  # seconds between reads while the module does not answer

    [io.map]                     # absent: DEFAULT_IO_MAP (docs/io-module.md)
    local_switch = 4
    inverted_inputs = []
    pulse_seconds = 0.5
    [[io.map.contactors]]
    number = 1
    coil = 0
    feedback = 0
    [[io.map.indicators]]
    name = "MV1"
    test_coil = 4
    reset_coil = 5
    overcurrent = 5              # each status input is optional
    groundfault = 6
    healthy = 7

`unit_id` lives here, next to the map (the map's `device_id`), because it
names the module the map describes (docs/io-module.md).
"""

from __future__ import annotations

import dataclasses

from rtu.config import TableReader
from rtu.io.modbus import Endpoint, SerialEndpoint, TcpEndpoint
from rtu.io.model import DEFAULT_IO_MAP, ContactorPoints, IndicatorPoints, IOMap

__all__ = ["IOConfig", "read_io_config"]


@dataclasses.dataclass(frozen=True, slots=True)
class IOConfig:
    endpoint: Endpoint
    iomap: IOMap
    poll_period: float
    retry: float


def read_io_config(t: TableReader) -> IOConfig:
    """Validate `[io]`; problems go to the reader's `Problems` (raise_if_any after)."""
    transport = t.string("transport", "tcp")
    timeout = t.number("timeout", 1.0, min=0.01, max=60)
    endpoint: Endpoint
    if transport == "serial":
        parity = t.string("parity", "N")
        stopbits = t.integer("stopbits", 1, min=1, max=2)
        bytesize = t.integer("bytesize", 8, min=7, max=8)
        if parity not in ("N", "E", "O"):
            t.error("parity", f'must be "N", "E" or "O", not {parity!r}')
            parity = "N"
        endpoint = SerialEndpoint(
            t.string("device", min_len=1),
            baudrate=t.integer("baudrate", 19200, min=300, max=921_600),
            parity=parity,  # type: ignore[arg-type]  # checked just above
            stopbits=2 if stopbits == 2 else 1,
            bytesize=7 if bytesize == 7 else 8,
            timeout=timeout,
        )
    else:
        if transport != "tcp":
            t.error("transport", f'must be "tcp" or "serial", not {transport!r}')
        endpoint = TcpEndpoint(
            t.string("host", min_len=1, max_len=253),
            port=t.integer("port", 502, min=1, max=65535),
            timeout=timeout,
        )
    unit_id = t.integer("unit_id", 1, min=0, max=247)
    iomap = _map(t, unit_id) if t.has("map") else DEFAULT_IO_MAP
    if not t.has("map"):
        iomap = dataclasses.replace(iomap, device_id=unit_id)
    config = IOConfig(
        endpoint=endpoint,
        iomap=iomap,
        poll_period=t.number("poll_period", 0.03, min=0.01, max=60),
        retry=t.number("retry", 1.0, min=0.01, max=3600),
    )
    t.done()
    return config


def _map(parent: TableReader, unit_id: int) -> IOMap:
    t = parent.subtable("map")
    contactors = []
    for entry in t.array_of_tables("contactors"):
        contactors.append(
            ContactorPoints(
                entry.integer("number", min=1, max=4),
                coil=entry.integer("coil", min=0, max=0xFFFF),
                feedback=entry.integer("feedback", min=0, max=0xFFFF),
            )
        )
        entry.done()
    indicators = []
    for entry in t.array_of_tables("indicators"):
        indicators.append(
            IndicatorPoints(
                entry.string("name", min_len=1, max_len=32),
                test_coil=entry.integer("test_coil", min=0, max=0xFFFF),
                reset_coil=entry.integer("reset_coil", min=0, max=0xFFFF),
                overcurrent=entry.integer("overcurrent", None, min=0, max=0xFFFF),
                groundfault=entry.integer("groundfault", None, min=0, max=0xFFFF),
                healthy=entry.integer("healthy", None, min=0, max=0xFFFF),
            )
        )
        entry.done()
    local_switch = t.integer("local_switch", min=0, max=0xFFFF)
    pulse_seconds = t.number("pulse_seconds", 0.5, min=0.05, max=10)
    raw_inverted = t.raw("inverted_inputs")
    inverted: frozenset[int] = frozenset()
    if raw_inverted is not None:
        if isinstance(raw_inverted, list) and all(
            isinstance(a, int) and not isinstance(a, bool) for a in raw_inverted
        ):
            inverted = frozenset(raw_inverted)
        else:
            t.error("inverted_inputs", "must be an array of input addresses")
    t.done()
    if not contactors:
        t.error("contactors", "at least one [[io.map.contactors]] is needed")
        return DEFAULT_IO_MAP
    try:
        return IOMap(
            contactors=tuple(contactors),
            local_switch=local_switch,
            indicators=tuple(indicators),
            pulse_seconds=pulse_seconds,
            device_id=unit_id,
            inverted_inputs=inverted,
        )
    except ValueError as exc:
        parent.error("map", str(exc))
        return DEFAULT_IO_MAP
