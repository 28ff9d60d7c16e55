"""A DSMR P1 meter on a pseudo-terminal: the streetlight supply meter of the HIL rig.

Theory of operation. `P1Meter` opens a pseudo-terminal and writes one DSMR
telegram to its master side every `interval` seconds from a dedicated thread;
the daemon opens the slave side (`P1Meter.device`) exactly as it opens
/dev/ttyUSB0 on a real station. The telegrams are dsmr-parser's own sample
telegrams (`TEMPLATES`) with the lines the RTU reads rewritten from the meter's
state, in the template's own number format, and the CRC16 recomputed (DSMR 4
and 5; DSMR 2.2 has none). The meter's clock and its energy registers tick every
interval whether or not anyone listens, like a real meter: `pause()` pulls the
cable (nothing is written), `resume()` plugs it back in.

Rendering (`render_telegram`) is a pure function of the template, the meter
state and the meter time, so tests can compute exactly what the wire carries.

    python -m hil.p1_meter --version 5 --interval 1 [--trace]

prints the slave device path on its first line; with `--trace` it then prints
`written <seq> <meter time> <monotonic ns>` for every telegram it writes (the
latency benchmark pairs these with what the reader parsed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import sys
import threading
import time
import tty
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from types import FrameType, TracebackType
from zoneinfo import ZoneInfo

__all__ = [
    "TEMPLATES",
    "VERSIONS",
    "MeterState",
    "P1Meter",
    "Written",
    "crc16_arc",
    "dsmr_timestamp",
    "initial_state",
    "main",
    "render_telegram",
]

# Sample telegrams from dsmr-parser's test suite (ndokter/dsmr_parser,
# test/example_telegrams.py, MIT licence), one line per item, without CRLF.
# Two deliberate differences from that file:
# - the identification line of the ISk5 meters carries a literal backslash
#   ("/ISk5\2MT382-1000": an IEC 62056-21 identification); in the upstream
#   Python source "\2" is an octal escape that turned it into the byte 0x02;
# - the DSMR 5 CRC is therefore 6EEE; upstream's 87B3 covers the 0x02 byte.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "2.2": (
        "/ISk5\\2MT382-1004",
        "",
        "0-0:96.1.1(00000000000000)",
        "1-0:1.8.1(00001.001*kWh)",
        "1-0:1.8.2(00001.001*kWh)",
        "1-0:2.8.1(00001.001*kWh)",
        "1-0:2.8.2(00001.001*kWh)",
        "0-0:96.14.0(0001)",
        "1-0:1.7.0(0001.01*kW)",
        "1-0:2.7.0(0000.00*kW)",
        "0-0:17.0.0(0999.00*kW)",
        "0-0:96.3.10(1)",
        "0-0:96.13.1()",
        "0-0:96.13.0()",
        "0-1:24.1.0(3)",
        "0-1:96.1.0(000000000000)",
        "0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)",
        "(00001.001)",
        "0-1:24.4.0(1)",
        "!",
    ),
    "4": (
        "/KFM5KAIFA-METER",
        "",
        "1-3:0.2.8(42)",
        "0-0:1.0.0(161113205757W)",
        "0-0:96.1.1(3960221976967177082151037881335713)",
        "1-0:1.8.1(001581.123*kWh)",
        "1-0:1.8.2(001435.706*kWh)",
        "1-0:2.8.1(000000.000*kWh)",
        "1-0:2.8.2(000000.000*kWh)",
        "0-0:96.14.0(0002)",
        "1-0:1.7.0(02.027*kW)",
        "1-0:2.7.0(00.000*kW)",
        "0-0:96.7.21(00015)",
        "0-0:96.7.9(00007)",
        "1-0:99.97.0(3)(0-0:96.7.19)(000104180320W)(0000237126*s)(000101000001W)"
        "(2147583646*s)(000102000003W)(2317482647*s)",
        "1-0:32.32.0(00000)",
        "1-0:52.32.0(00000)",
        "1-0:72.32.0(00000)",
        "1-0:32.36.0(00000)",
        "1-0:52.36.0(00000)",
        "1-0:72.36.0(00000)",
        "0-0:96.13.1()",
        "0-0:96.13.0()",
        "1-0:31.7.0(000*A)",
        "1-0:51.7.0(006*A)",
        "1-0:71.7.0(002*A)",
        "1-0:21.7.0(00.170*kW)",
        "1-0:22.7.0(00.000*kW)",
        "1-0:41.7.0(01.247*kW)",
        "1-0:42.7.0(00.000*kW)",
        "1-0:61.7.0(00.209*kW)",
        "1-0:62.7.0(00.000*kW)",
        "0-1:24.1.0(003)",
        "0-1:96.1.0(4819243993373755377509728609491464)",
        "0-1:24.2.1(161129200000W)(00981.443*m3)",
        "!6796",
    ),
    "5": (
        "/ISk5\\2MT382-1000",
        "",
        "1-3:0.2.8(50)",
        "0-0:1.0.0(170102192002W)",
        "0-0:96.1.1(4B384547303034303436333935353037)",
        "1-0:1.8.1(000004.426*kWh)",
        "1-0:1.8.2(000002.399*kWh)",
        "1-0:2.8.1(000002.444*kWh)",
        "1-0:2.8.2(000000.000*kWh)",
        "0-0:96.14.0(0002)",
        "1-0:1.7.0(00.244*kW)",
        "1-0:2.7.0(00.000*kW)",
        "0-0:96.7.21(00013)",
        "0-0:96.7.9(00000)",
        "1-0:99.97.0(0)(0-0:96.7.19)",
        "1-0:32.32.0(00000)",
        "1-0:52.32.0(00000)",
        "1-0:72.32.0(00000)",
        "1-0:32.36.0(00000)",
        "1-0:52.36.0(00000)",
        "1-0:72.36.0(00000)",
        "0-0:96.13.0()",
        "1-0:32.7.0(0230.0*V)",
        "1-0:52.7.0(0230.0*V)",
        "1-0:72.7.0(0229.0*V)",
        "1-0:31.7.0(0.48*A)",
        "1-0:51.7.0(0.44*A)",
        "1-0:71.7.0(0.86*A)",
        "1-0:21.7.0(00.070*kW)",
        "1-0:41.7.0(00.032*kW)",
        "1-0:61.7.0(00.142*kW)",
        "1-0:22.7.0(00.000*kW)",
        "1-0:42.7.0(00.000*kW)",
        "1-0:62.7.0(00.000*kW)",
        "0-1:24.1.0(003)",
        "0-1:96.1.0(3232323241424344313233343536373839)",
        "0-1:24.2.1(170102161005W)(00000.107*m3)",
        "0-2:24.1.0(003)",
        "0-2:96.1.0()",
        "!6EEE",
    ),
}
VERSIONS = tuple(TEMPLATES)

_TIMESTAMP = "0-0:1.0.0"
_TARIFF = "0-0:96.14.0"
_ENERGY = ("1-0:1.8.1", "1-0:1.8.2")  # delivered to the client, tariff 1 and 2
_POWER = "1-0:1.7.0"
_PHASE_POWER = ("1-0:21.7.0", "1-0:41.7.0", "1-0:61.7.0")
_PHASE_CURRENT = ("1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0")
_PHASE_VOLTAGE = ("1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0")
_NOMINAL_VOLTAGE = Decimal("230")  # DSMR 4 meters do not report voltage
_DUTCH_TIME = ZoneInfo("Europe/Amsterdam")  # DSMR meters keep Dutch local time
_SINGLE_VALUE = re.compile(
    r"^(?P<obis>\d-\d:\d+\.\d+\.\d+)\((?P<value>[^()*]*)(?:\*(?P<unit>[^()]*))?\)$"
)

Phases = tuple[Decimal, Decimal, Decimal]


def crc16_arc(data: bytes) -> int:
    """CRC16 of a DSMR telegram, '/' to '!' (P1 companion standard: x^16+x^15+x^2+1, LSB first).

    Written independently of dsmr-parser's checker so the simulator tests it.
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def dsmr_timestamp(moment: datetime) -> str:
    """`YYMMDDhhmmssX` in Dutch local time, X = S(ummer) or W(inter): a DSMR timestamp."""
    local = moment.astimezone(_DUTCH_TIME)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() else "W")


@dataclasses.dataclass(frozen=True, slots=True)
class MeterState:
    """What the meter measures. Energy registers are exact; the telegram truncates them."""

    energy: tuple[Decimal, Decimal]  # kWh delivered to the client, tariff 1 and 2
    tariff: int  # the active tariff (1 or 2): the register that counts
    total: Decimal  # kW, all phases; real meters sample it apart from the phases
    power: Phases  # kW per phase; DSMR 2.2 shows only the total
    current: Phases  # A per phase


def _values(template: Sequence[str]) -> dict[str, str]:
    found = {}
    for line in template:
        if match := _SINGLE_VALUE.match(line):
            found[match["obis"]] = match["value"]
    return found


def initial_state(version: str) -> MeterState:
    """The state whose telegram carries the template's own values."""
    values = _values(TEMPLATES[version])
    if all(code in values for code in _PHASE_POWER):
        power = _phases(values, _PHASE_POWER)
    else:
        power = (Decimal(values[_POWER]), Decimal(0), Decimal(0))
    if all(code in values for code in _PHASE_CURRENT):
        current = _phases(values, _PHASE_CURRENT)
    else:
        current = (Decimal(0), Decimal(0), Decimal(0))
    return MeterState(
        energy=(Decimal(values[_ENERGY[0]]), Decimal(values[_ENERGY[1]])),
        tariff=int(values[_TARIFF]),
        total=Decimal(values[_POWER]),
        power=power,
        current=current,
    )


def _phases(values: dict[str, str], codes: Sequence[str]) -> Phases:
    return (Decimal(values[codes[0]]), Decimal(values[codes[1]]), Decimal(values[codes[2]]))


def _fit(value: Decimal, template_value: str, rounding: str) -> str:
    """Format `value` like the template's value for the same line.

    As many decimals as the template. A zero-padded whole part ("00.070") is a
    fixed-width field: a value that needs more digits does not fit the meter. An
    unpadded one ("0.48" A in the DSMR 5 sample) is variable-width.
    """
    whole, _, fraction = template_value.partition(".")
    exponent = Decimal(1).scaleb(-len(fraction))
    text = format(value.quantize(exponent, rounding=rounding), f"0{len(template_value)}f")
    fixed_width = len(whole) > 1 and whole.startswith("0")
    if fixed_width and len(text) != len(template_value):
        raise ValueError(f"{value} does not fit the meter's format {template_value!r}")
    return text


def render_telegram(
    version: str, state: MeterState, meter_time: datetime, *, corrupt_crc: bool = False
) -> str:
    """The telegram the meter sends for `state` at `meter_time`, CRLF line ends included."""
    template = TEMPLATES[version]
    original = _values(template)
    replacements: dict[str, tuple[Decimal, str]] = {
        _ENERGY[0]: (state.energy[0], ROUND_DOWN),  # a register shows what has been counted
        _ENERGY[1]: (state.energy[1], ROUND_DOWN),
        _POWER: (state.total, ROUND_HALF_UP),
    }
    for code, power in zip(_PHASE_POWER, state.power, strict=True):
        replacements[code] = (power, ROUND_HALF_UP)
    for code, current in zip(_PHASE_CURRENT, state.current, strict=True):
        replacements[code] = (current, ROUND_HALF_UP)
    lines = []
    for line in template[:-1]:
        match = _SINGLE_VALUE.match(line)
        if match is None:
            lines.append(line)
            continue
        code, unit = match["obis"], match["unit"]
        if code == _TIMESTAMP:
            text = dsmr_timestamp(meter_time)
        elif code in replacements:
            value, rounding = replacements[code]
            text = _fit(value, original[code], rounding)
        else:
            lines.append(line)
            continue
        lines.append(f"{code}({text}*{unit})" if unit else f"{code}({text})")
    body = "\r\n".join([*lines, "!"])
    if template[-1] == "!":  # DSMR 2.2: no CRC
        return body + "\r\n"
    crc = crc16_arc(body.encode("ascii"))
    if corrupt_crc:
        crc = (crc + 1) & 0xFFFF
    return f"{body}{crc:04X}\r\n"


def _voltages(version: str) -> Phases:
    values = _values(TEMPLATES[version])
    if all(code in values for code in _PHASE_VOLTAGE):
        return _phases(values, _PHASE_VOLTAGE)
    return (_NOMINAL_VOLTAGE, _NOMINAL_VOLTAGE, _NOMINAL_VOLTAGE)


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """One telegram on the wire: what the trace and the benchmark see."""

    seq: int
    meter_time: datetime
    monotonic_ns: int  # time.monotonic_ns() right after the write: one clock per host
    text: str


class P1Meter:
    """A P1 port on a pseudo-terminal, writing a telegram every `interval` seconds.

    Use as a context manager (or `start()`/`stop()`); `device` is the path to open.
    All controls are thread-safe and take effect from the next telegram.
    """

    def __init__(
        self,
        version: str = "5",
        interval: float = 1.0,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_written: Callable[[Written], None] | None = None,
    ) -> None:
        if version not in TEMPLATES:
            raise ValueError(f"DSMR version {version!r} not simulated; choose from {VERSIONS}")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.version = version
        self.interval = interval
        self._clock = clock
        self._on_written = on_written
        self._state = initial_state(version)
        self._voltage = _voltages(version)
        self._lock = threading.Condition()
        self._paused = False
        self._corrupt_next = False
        self._written = 0
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master, self._slave = os.openpty()
        # Raw mode from the start: a cooked pty would turn CR into LF and echo the
        # telegrams back before the reader opens it and sets its own mode.
        tty.setraw(self._slave)
        # Non-blocking: with no reader the pty fills up, and a meter does not wait.
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("P1Meter already started")
        self._thread = threading.Thread(target=self._write_loop, name="p1-meter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and close the pty: an open reader sees the line go away."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        os.close(self._master)
        os.close(self._slave)

    def __enter__(self) -> P1Meter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- controls --------------------------------------------------------

    def set_power(
        self, l1: Decimal, l2: Decimal, l3: Decimal, *, current: Phases | None = None
    ) -> None:
        """Set the load in kW per phase; current follows from P/U unless given in A."""
        power = (l1, l2, l3)
        if any(value < 0 for value in power):
            raise ValueError("the streetlight meter only imports: power must be >= 0")
        if current is None:
            current = (
                l1 * 1000 / self._voltage[0],
                l2 * 1000 / self._voltage[1],
                l3 * 1000 / self._voltage[2],
            )
        total = l1 + l2 + l3
        state = dataclasses.replace(self.state, total=total, power=power, current=current)
        render_telegram(self.version, state, self._clock())  # refuse what the format cannot show
        with self._lock:
            self._state = dataclasses.replace(
                self._state, total=total, power=power, current=current
            )

    def corrupt_next_crc(self) -> None:
        """Send the next telegram with a wrong CRC (a bit flipped on the line)."""
        if self.version == "2.2":
            raise ValueError("DSMR 2.2 telegrams carry no CRC")
        with self._lock:
            self._corrupt_next = True

    def pause(self) -> None:
        """Pull the cable: the meter keeps metering, nothing reaches the port."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def write_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the line (noise, a foreign telegram)."""
        with self._lock:
            self._write(data)

    # -- observation -----------------------------------------------------

    @property
    def state(self) -> MeterState:
        with self._lock:
            return self._state

    @property
    def written(self) -> int:
        """Telegrams written so far."""
        with self._lock:
            return self._written

    @property
    def dropped(self) -> int:
        """Bytes dropped because nobody drained the port."""
        with self._lock:
            return self._dropped

    def wait_written(self, count: int, timeout: float) -> None:
        """Block until `count` telegrams have been written; TimeoutError after `timeout` s."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._written >= count, timeout):
                raise TimeoutError(f"{self._written} of {count} telegrams written in {timeout} s")

    # -- the meter -------------------------------------------------------

    def _write_loop(self) -> None:
        # Ticks are scheduled from the start so the meter clock does not drift.
        started = time.monotonic()
        meter_epoch = self._clock()
        interval = Decimal(str(self.interval))
        tick = 0
        while not self._stop.wait(max(0.0, started + tick * self.interval - time.monotonic())):
            meter_time = meter_epoch + tick * timedelta(seconds=self.interval)
            with self._lock:
                state = self._state
                written = None
                if not self._paused:
                    text = render_telegram(
                        self.version, state, meter_time, corrupt_crc=self._corrupt_next
                    )
                    self._corrupt_next = False
                    self._write(text.encode("ascii"))
                    self._written += 1
                    written = Written(self._written, meter_time, time.monotonic_ns(), text)
                    self._lock.notify_all()
                self._state = _metered(state, interval)
            if written is not None and self._on_written is not None:
                self._on_written(written)
            tick += 1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                self._dropped += len(view)
                return
            view = view[sent:]


def _metered(state: MeterState, interval: Decimal) -> MeterState:
    """The state one interval later: the active tariff register counts the energy."""
    kwh = state.total * interval / 3600
    t1, t2 = state.energy
    energy = (t1 + kwh, t2) if state.tariff == 1 else (t1, t2 + kwh)
    return dataclasses.replace(state, energy=energy)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.p1_meter", description=__doc__)
    parser.add_argument("--version", choices=VERSIONS, default="5", help="DSMR version")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between telegrams")
    parser.add_argument("--trace", action="store_true", help="print a line per telegram written")
    args = parser.parse_args(argv)

    def trace(written: Written) -> None:
        print(
            f"written {written.seq} {written.meter_time.isoformat()} {written.monotonic_ns}",
            flush=True,
        )

    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    meter = P1Meter(args.version, args.interval, on_written=trace if args.trace else None)
    print(meter.device, flush=True)
    with meter:
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
