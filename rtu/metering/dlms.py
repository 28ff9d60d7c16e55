"""DLMS/COSEM meters (IEC 62056) read with gurux-dlms, as an OS³P `MeterSource`.

Theory of operation
-------------------
`DlmsMeter` is the asyncio face; `_Session` does the blocking work (socket or
serial port + gurux `GXDLMSClient`, logical-name referencing) on one worker
thread per meter, so a slow meter never stalls the event loop and calls to one
meter are serialised. The session stays associated between polls; any failure
closes it, and the next poll opens a new one. A failure on a session that was
already open is retried once on a fresh one, because meters drop idle
associations (an inactivity timeout) and that alone should not cost a poll.

A poll reads the clock (0.0.1.0.0.255, attribute 2) and then each configured
register: scaler_unit (attribute 3) once per association, value (attribute 2)
every time. IEC 62056-6-2 §4.3.2: value × 10^scaler is the quantity in the
unit. Values are scaled with `Decimal.scaleb`, never through float.

Authentication: none (public client), low (password) and HLS-GMAC
(mechanism 5: AARQ/AARE carry system titles and challenges, then the client
proves the shared keys by GMAC in reply_to_HLS_authentication). xDLMS APDUs
are not ciphered (security policy "none"); that is a separate step.

Everything gurux or the transport raises becomes `SourceError` in `_guarded`,
the one boundary; `Any` from the untyped library stays inside `_Session`.

OBIS → OS³P measurand table (OS³P 0.4 §6.5 Table 1)
---------------------------------------------------
Instantaneous values (OBIS group C = quantity and phase, D = 7 "instantaneous"):
voltage 32/52/72 → Voltage.L1N/L2N/L3N (V), current 31/51/71/91 →
Current.L1/L2/L3/N (A), active power A+ 21/41/61/1 → ActivePower.L1/L2/L3/Sum (W),
reactive power Q+ 23/43/63/3 → ReactivePower.* (var), apparent power 29/49/69/9
→ ApparentPower.* (VA), power factor 33/53/73/13 → PowerFactor.* (no unit).

Energy: 1.0.1.8.0.255 (active energy import A+, total of all tariffs) →
"RealEnergyConsumed.Sum" in Wh; 1.0.2.8.0.255 (export A−) →
"RealEnergyDelivered.Sum". The JSON enum also carries the OCPP-style
"Energy.Active.Import.Register", but Table 1, which gives each measurand its
unit, lists only RealEnergyConsumed/Delivered (unit Wh), so that is what we
send. (Table 1 describes RealEnergyConsumed.Sum as "Real energy delivered
total"; that is a copy slip of the next row, we go by the name.) Import is
consumption as seen from the station, which is what A+ measures. The tariff
registers (1.0.1.8.1, 1.0.1.8.2, ...) have no OS³P measurand and are not read.

The unit the meter reports must equal the table's; a mismatch (say a varh
register configured where Wh is expected) is a configuration error reported
as SourceError, not a number silently sent with the wrong unit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

from rtu.metering.model import Sample, SourceError

__all__ = [
    "DEFAULT_REGISTERS",
    "MEASURANDS",
    "CosemDateTimeError",
    "DlmsConfig",
    "DlmsDataError",
    "DlmsMeter",
    "ProfileRow",
    "decode_cosem_datetime",
    "os3p_unit",
    "scale",
]

_log = logging.getLogger(__name__)

CLOCK_OBIS = "0.0.1.0.0.255"
LOAD_PROFILE_OBIS = "1.0.99.1.0.255"

# IEC 62056-6-2 §4.5, unit enumeration → OS³P unit wire name (None: the spec's "-").
_UNITS: Mapping[int, str | None] = {
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    35: "V",
    255: None,  # "count", used for unitless quantities such as the power factor
}


@dataclasses.dataclass(frozen=True, slots=True)
class Measurand:
    """How one OBIS code appears in OS³P."""

    name: str
    unit: str | None


# See the module docstring for the reasoning behind each row.
MEASURANDS: Mapping[str, Measurand] = {
    "1.0.32.7.0.255": Measurand("Voltage.L1N", "V"),
    "1.0.52.7.0.255": Measurand("Voltage.L2N", "V"),
    "1.0.72.7.0.255": Measurand("Voltage.L3N", "V"),
    "1.0.31.7.0.255": Measurand("Current.L1", "A"),
    "1.0.51.7.0.255": Measurand("Current.L2", "A"),
    "1.0.71.7.0.255": Measurand("Current.L3", "A"),
    "1.0.91.7.0.255": Measurand("Current.N", "A"),
    "1.0.21.7.0.255": Measurand("ActivePower.L1", "W"),
    "1.0.41.7.0.255": Measurand("ActivePower.L2", "W"),
    "1.0.61.7.0.255": Measurand("ActivePower.L3", "W"),
    "1.0.1.7.0.255": Measurand("ActivePower.Sum", "W"),
    "1.0.23.7.0.255": Measurand("ReactivePower.L1", "var"),
    "1.0.43.7.0.255": Measurand("ReactivePower.L2", "var"),
    "1.0.63.7.0.255": Measurand("ReactivePower.L3", "var"),
    "1.0.3.7.0.255": Measurand("ReactivePower.Sum", "var"),
    "1.0.29.7.0.255": Measurand("ApparentPower.L1", "VA"),
    "1.0.49.7.0.255": Measurand("ApparentPower.L2", "VA"),
    "1.0.69.7.0.255": Measurand("ApparentPower.L3", "VA"),
    "1.0.9.7.0.255": Measurand("ApparentPower.Sum", "VA"),
    "1.0.33.7.0.255": Measurand("PowerFactor.L1", None),
    "1.0.53.7.0.255": Measurand("PowerFactor.L2", None),
    "1.0.73.7.0.255": Measurand("PowerFactor.L3", None),
    "1.0.13.7.0.255": Measurand("PowerFactor.Sum", None),
    "1.0.1.8.0.255": Measurand("RealEnergyConsumed.Sum", "Wh"),
    "1.0.2.8.0.255": Measurand("RealEnergyDelivered.Sum", "Wh"),
}

# What a substation transformer meter is polled for unless configured otherwise.
DEFAULT_REGISTERS: tuple[str, ...] = (
    "1.0.32.7.0.255",
    "1.0.52.7.0.255",
    "1.0.72.7.0.255",
    "1.0.31.7.0.255",
    "1.0.51.7.0.255",
    "1.0.71.7.0.255",
    "1.0.21.7.0.255",
    "1.0.41.7.0.255",
    "1.0.61.7.0.255",
    "1.0.1.7.0.255",
    "1.0.23.7.0.255",
    "1.0.43.7.0.255",
    "1.0.63.7.0.255",
    "1.0.3.7.0.255",
    "1.0.1.8.0.255",
    "1.0.2.8.0.255",
)


@dataclasses.dataclass(frozen=True, slots=True)
class DlmsConfig:
    """Where the meter is and how to associate with it."""

    host: str = "127.0.0.1"
    port: int = 4059  # IANA "dlms-cosem" port
    transport: Literal["wrapper", "hdlc", "serial"] = "wrapper"
    serial_port: str = ""  # for transport="serial": HDLC over this serial device
    baud_rate: int = 9600
    authentication: Literal["none", "low", "hls-gmac"] = "none"
    password: str = dataclasses.field(default="", repr=False)  # kept out of logs
    # HLS-GMAC (mechanism 5): our system title and the keys shared with the meter.
    system_title: bytes = b"RTU00001"
    block_cipher_key: bytes = dataclasses.field(default=b"", repr=False)
    authentication_key: bytes = dataclasses.field(default=b"", repr=False)
    # Green Book: client 16 is the public client (no security); 17 is customary
    # for a reading client with a password.
    client_address: int = 16
    server_logical_address: int = 1
    server_physical_address: int = 17  # HDLC only
    timeout: float = 5.0  # seconds per request/response exchange
    registers: tuple[str, ...] = DEFAULT_REGISTERS
    profile_obis: str = LOAD_PROFILE_OBIS

    def __post_init__(self) -> None:
        unknown = [obis for obis in self.registers if obis not in MEASURANDS]
        if unknown:
            raise ValueError(f"no OS³P measurand for OBIS {', '.join(unknown)}")
        if self.transport == "serial" and not self.serial_port:
            raise ValueError("transport 'serial' needs serial_port")
        if self.authentication == "hls-gmac" and (
            len(self.system_title) != 8
            or len(self.block_cipher_key) != 16
            or len(self.authentication_key) != 16
        ):
            raise ValueError("hls-gmac needs an 8-byte system title and two 16-byte keys")


@dataclasses.dataclass(frozen=True, slots=True)
class ProfileRow:
    """One load-profile entry: the period's capture time and its scaled values."""

    timestamp: datetime
    samples: tuple[Sample, ...]


# -- pure helpers ------------------------------------------------------------


class DlmsDataError(ValueError):
    """The meter answered, but with data we cannot use (reported, not retried)."""


class CosemDateTimeError(DlmsDataError):
    """A date-time the meter sent cannot be placed on the UTC time line."""


def decode_cosem_datetime(raw: bytes) -> datetime:
    """An aware UTC datetime from a COSEM date-time octet-string.

    IEC 62056-6-2 §4.1.6.1 (Blue Book 4.1.6.1): year(2) month day weekday hour
    minute second hundredths deviation(2, signed) clock_status. Deviation is
    "minutes of local time to UTC": UTC = local + deviation (a CET meter sends
    -60). 0x8000 means "not specified"; we then take the time as UTC, which is
    how substation meters are commissioned here (a meter on local time must be
    given a deviation). Wildcards (0xFF) in a clock reading make it no
    instant at all and are refused.
    """
    if len(raw) != 12:
        raise CosemDateTimeError(f"date-time needs 12 bytes, got {len(raw)}")
    year = int.from_bytes(raw[0:2], "big")
    month, day, _weekday, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if year == 0xFFFF or 0xFF in (month, day, hour, minute, second):
        raise CosemDateTimeError(f"date-time with wildcards: {raw.hex()}")
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise CosemDateTimeError(f"invalid date-time {raw.hex()}: {exc}") from exc
    if hundredths != 0xFF:
        local += timedelta(milliseconds=10 * hundredths)
    if deviation == -0x8000:
        return local
    return local + timedelta(minutes=deviation)


def scale(raw: int, scaler: int) -> Decimal:
    """value × 10^scaler, exactly (IEC 62056-6-2 §4.3.2).

    A negative scaler keeps the meter's resolution ("305.00" A); a positive one
    is written out in full ("123456780", not "1.2345678E+8") so the number
    reads the same in JSON.
    """
    value = Decimal(raw).scaleb(scaler)
    return value.quantize(_ONE) if scaler > 0 else value


_ONE = Decimal(1)


def os3p_unit(obis: str, unit_code: int) -> str | None:
    """The OS³P unit of a register, checked against the measurand table."""
    expected = MEASURANDS[obis].unit
    if unit_code not in _UNITS or _UNITS[unit_code] != expected:
        raise DlmsDataError(f"{obis}: meter unit {unit_code}, table expects {expected!r}")
    return expected


# -- the blocking side (worker thread) ---------------------------------------


class _Link(Protocol):
    """A byte pipe to the meter."""

    def send(self, data: bytes) -> None: ...

    def receive(self) -> bytes:
        """Some bytes, at least one; raise on timeout or end of stream."""
        ...

    def close(self) -> None: ...


class _TcpLink:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self) -> bytes:
        data = self._sock.recv(4096)
        if not data:
            raise ConnectionError("meter closed the connection")
        return data

    def close(self) -> None:
        self._sock.close()


class _SerialLink:
    def __init__(self, port: str, baud_rate: int, timeout: float) -> None:
        import serial

        self._port: Any = serial.serial_for_url(port, baudrate=baud_rate, timeout=timeout)
        # Leftovers of an earlier association would be taken for the UA.
        self._port.reset_input_buffer()

    def send(self, data: bytes) -> None:
        self._port.write(data)

    def receive(self) -> bytes:
        first: bytes = self._port.read(1)
        if not first:
            raise TimeoutError("no answer from the meter")
        rest: bytes = self._port.read(self._port.in_waiting)
        return first + rest

    def close(self) -> None:
        self._port.close()


class _Session:
    """One association with the meter, used from the worker thread only."""

    def __init__(self, config: DlmsConfig) -> None:
        from gurux_dlms.enums import Authentication, InterfaceType
        from gurux_dlms.secure import GXDLMSSecureClient

        self._config = config
        hdlc = config.transport in ("hdlc", "serial")
        if hdlc:
            # IEC 62056-46 §6.4.2.2: two-byte server address, upper = logical,
            # lower = physical, 7 bits each.
            server = (config.server_logical_address << 7) | config.server_physical_address
        else:
            server = config.server_logical_address
        auth = {
            "none": Authentication.NONE,
            "low": Authentication.LOW,
            "hls-gmac": Authentication.HIGH_GMAC,
        }[config.authentication]
        # The secure client is the plain one plus a ciphering context (system
        # title, keys); with security NONE it ciphers nothing.
        self._client: Any = GXDLMSSecureClient(
            True,
            config.client_address,
            server,
            auth,
            config.password or None,
            InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER,
        )
        if config.authentication == "hls-gmac":
            ciphering = self._client.ciphering
            ciphering.systemTitle = bytearray(config.system_title)
            ciphering.blockCipherKey = bytearray(config.block_cipher_key)
            ciphering.authenticationKey = bytearray(config.authentication_key)
        self._link: _Link
        if config.transport == "serial":
            self._link = _SerialLink(config.serial_port, config.baud_rate, config.timeout)
        else:
            self._link = _TcpLink(config.host, config.port, config.timeout)
        self._hdlc = hdlc
        # Per association: OBIS → (scaler, unit code). A meter may be
        # reparametrised between associations, never during one.
        self._scaler_unit: dict[str, tuple[int, int]] = {}
        self._profile: tuple[Any, list[tuple[int, str]]] | None = None
        try:
            self._associate()
        except BaseException:
            self._link.close()
            raise

    # exchange ----------------------------------------------------------------

    def _exchange(self, request: Any, reply: Any) -> None:
        """Send one frame and feed the answer to gurux until it is complete."""
        from gurux_dlms import GXByteBuffer, GXReplyData

        self._link.send(bytes(request))
        received = GXByteBuffer()
        notify = GXReplyData()
        deadline = time.monotonic() + self._config.timeout
        while not self._client.getData(received, reply, notify):
            if time.monotonic() > deadline:
                raise TimeoutError("incomplete answer from the meter")
            received.set(self._link.receive())

    def _request(self, frames: Any) -> Any:
        """Send a request (one or more frames) and collect every block of the answer."""
        from gurux_dlms import GXReplyData

        reply = GXReplyData()
        for frame in frames if isinstance(frames, list) else [frames]:
            reply.clear()
            self._exchange(frame, reply)
            while reply.isMoreData():
                self._exchange(self._client.receiverReady(reply), reply)
        if reply.error:
            from gurux_dlms import GXDLMSException

            raise GXDLMSException(reply.error)
        return reply

    def _associate(self) -> None:
        if self._hdlc:
            reply = self._request(self._client.snrmRequest())
            self._client.parseUAResponse(reply.data)
        reply = self._request(self._client.aarqRequest())
        self._client.parseAareResponse(reply.data)
        if self._client.isAuthenticationRequired:
            # HLS pass 3 and 4 (IEC 62056-5-3 §9.2.7.4): answer the meter's
            # challenge with f(StoC) and check its f(CtoS).
            reply = self._request(self._client.getApplicationAssociationRequest())
            self._client.parseApplicationAssociationResponse(reply.data)

    def close(self) -> None:
        """Release the association politely, then drop the link whatever happens."""
        try:
            self._request(self._client.releaseRequest())
            if self._hdlc:
                self._request(self._client.disconnectRequest())
        except Exception as exc:  # the link is going away regardless
            _log.debug("release failed: %s", exc)
        finally:
            self._link.close()

    def abort(self) -> None:
        """Drop the link without a release: after a failure it cannot carry one."""
        self._link.close()

    # reads -------------------------------------------------------------------

    def _get(self, class_id: int, obis: str, attribute: int) -> Any:
        from gurux_dlms.objects import GXDLMSObject

        target = GXDLMSObject(class_id, obis)
        return self._request(self._client.read(target, attribute)[0]).value

    def clock(self) -> datetime:
        raw = self._get(8, CLOCK_OBIS, 2)  # class 8: Clock
        return decode_cosem_datetime(bytes(raw))

    def scaler_unit(self, obis: str) -> tuple[int, int]:
        if obis not in self._scaler_unit:
            scaler, unit = self._get(3, obis, 3)  # class 3: Register
            self._scaler_unit[obis] = (int(scaler), int(unit))
        return self._scaler_unit[obis]

    def register(self, obis: str) -> tuple[Decimal, str | None]:
        scaler, unit = self.scaler_unit(obis)
        unit_name = os3p_unit(obis, unit)
        return scale(int(self._get(3, obis, 2)), scaler), unit_name

    def poll(self) -> list[Sample]:
        when = self.clock()
        samples = []
        for obis in self._config.registers:
            value, unit = self.register(obis)
            samples.append(Sample(MEASURANDS[obis].name, value, unit, when))
        return samples

    def profile(self, start: datetime, end: datetime) -> list[ProfileRow]:
        profile, columns = self._load_profile()
        # gurux restricts the range on the profile's first capture object (the clock).
        rows = self._request(self._client.readRowsByRange(profile, start, end)).value or []
        result = []
        for row in rows:
            when = decode_cosem_datetime(bytes(row[0]))
            samples = []
            for position, obis in columns:
                raw = row[position]
                scaler, unit = self.scaler_unit(obis)
                value = scale(int(raw), scaler)
                samples.append(Sample(MEASURANDS[obis].name, value, os3p_unit(obis, unit), when))
            result.append(ProfileRow(when, tuple(samples)))
        return result

    def _load_profile(self) -> tuple[Any, list[tuple[int, str]]]:
        """The profile object and its mapped columns (position, OBIS), once per association.

        Columns other than mapped registers (a status word, a tariff register)
        are skipped: the history only takes what has an OS³P measurand.
        """
        if self._profile is None:
            from gurux_dlms.objects import GXDLMSProfileGeneric

            obis = self._config.profile_obis
            profile = GXDLMSProfileGeneric(obis)
            self._client.updateValue(profile, 3, self._get(7, obis, 3))  # class 7: Profile generic
            captured = [(o.objectType, o.logicalName) for o, _ in profile.captureObjects]
            if not captured or captured[0] != (8, CLOCK_OBIS):
                raise DlmsDataError(f"{obis}: first capture object is not the clock")
            columns = [
                (position, ln)
                for position, (class_id, ln) in enumerate(captured)
                if class_id == 3 and ln in MEASURANDS
            ]
            self._profile = (profile, columns)
        return self._profile


# -- the asyncio side ----------------------------------------------------------

_T = TypeVar("_T")


class DlmsMeter:
    """A DLMS/COSEM meter polled over TCP (wrapper or HDLC) or a serial line."""

    def __init__(self, name: str, config: DlmsConfig) -> None:
        self._name = name
        self._config = config
        self._session: _Session | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def name(self) -> str:
        return self._name

    async def read(self) -> Sequence[Sample]:
        """Clock and every configured register, each sample stamped with the meter's time."""
        return await self._call(lambda session: session.poll())

    async def read_profile(self, start: datetime, end: datetime) -> list[ProfileRow]:
        """Load-profile rows captured in [start, end] (both inclusive), scaled.

        Used after an outage to fill the gap in the history with the meter's own
        15-minute records.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("read_profile needs aware datetimes")
        # Sent as UTC (deviation 0): the sign of a non-zero deviation is where
        # meters and libraries disagree.
        first, last = start.astimezone(UTC), end.astimezone(UTC)
        return await self._call(lambda session: session.profile(first, last))

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self._release_session)
        finally:
            executor.shutdown(wait=False)

    async def _call(self, work: Callable[[_Session], _T]) -> _T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"dlms-{self._name}"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)

    def _guarded(self, work: Callable[[_Session], _T]) -> _T:
        """Run `work` on an open session; the one place library errors become SourceError."""
        reused = self._session is not None
        try:
            return work(self._open())
        except DlmsDataError as exc:
            raise SourceError(self._name, str(exc)) from exc
        except Exception as first:
            self._drop_session()
            if not reused:
                raise SourceError(self._name, _describe(first)) from first
            _log.info("%s: stale association (%s), reconnecting", self._name, _describe(first))
        try:
            return work(self._open())
        except DlmsDataError as exc:
            raise SourceError(self._name, str(exc)) from exc
        except Exception as second:
            self._drop_session()
            raise SourceError(self._name, _describe(second)) from second

    def _open(self) -> _Session:
        if self._session is None:
            self._session = _Session(self._config)
        return self._session

    def _release_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.abort()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\r\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
