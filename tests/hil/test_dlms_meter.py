"""The DLMS meter simulator, read by an independent client: dlms-cosem (pwitab).

Our own driver (rtu.metering.dlms) is built on gurux-dlms like the simulator;
reading the simulator with a second, unrelated DLMS implementation keeps the
two from agreeing on a shared mistake.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dlms_cosem import a_xdr, cosem, enumerations, exceptions
from dlms_cosem.clients.dlms_client import DlmsClient
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.parsers import ProfileGenericBufferParser
from dlms_cosem.time import datetime_from_bytes
from gurux_dlms import GXByteBuffer, GXDLMSConfirmedServiceError, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSProfileGeneric, GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient

from hil.dlms_meter import (
    CLOCK_OBIS,
    ENERGY_EXPORT_OBIS,
    ENERGY_IMPORT_OBIS,
    PROFILE_OBIS,
    PROFILE_STATUS_OBIS,
    REGISTERS,
    DlmsMeterSimulator,
)

PASSWORD = "secret-1"
METER_TIME = datetime(2026, 3, 29, 10, 17, 42, tzinfo=UTC)
PROFILE_START = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)

# IEC 62056-6-2 §4.5 unit enumeration, independent of gurux's Unit enum.
UNIT_CODES = {"Wh": 30, "V": 35, "A": 33, "W": 27, "var": 29}

# OBIS code -> (scaler exponent, unit): what a meter data sheet would promise.
EXPECTED = {
    "1.0.1.8.0.255": (1, "Wh"),
    "1.0.2.8.0.255": (1, "Wh"),
    "1.0.32.7.0.255": (-1, "V"),
    "1.0.52.7.0.255": (-1, "V"),
    "1.0.72.7.0.255": (-1, "V"),
    "1.0.31.7.0.255": (-2, "A"),
    "1.0.21.7.0.255": (0, "W"),
    "1.0.1.7.0.255": (0, "W"),
    "1.0.23.7.0.255": (1, "var"),
}


@pytest.fixture
def meter() -> Iterator[DlmsMeterSimulator]:
    sim = DlmsMeterSimulator(password=PASSWORD, profile_start=PROFILE_START, profile_periods=96)
    sim.set_clock(METER_TIME)
    with sim:
        yield sim


def _client(meter: DlmsMeterSimulator, *, password: str = PASSWORD) -> DlmsClient:
    return DlmsClient.with_tcp_transport(
        host="127.0.0.1",
        port=meter.port,
        client_logical_address=17,
        server_logical_address=1,
        authentication_method=enumerations.AuthenticationMechanism.LLS,
        password=password.encode(),
        timeout=5,
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` until it holds; fail at the deadline (no tuned sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met before the deadline")
        time.sleep(0.001)


def _decode(raw: bytes) -> Any:
    decoder = a_xdr.AXdrDecoder(
        encoding_conf=a_xdr.EncodingConf(attributes=[a_xdr.Sequence(attribute_name="data")])
    )
    return decoder.decode(raw)["data"]


def _register(obis: str, attribute: int) -> cosem.CosemAttribute:
    return cosem.CosemAttribute(
        interface=enumerations.CosemInterface.REGISTER,
        instance=cosem.Obis.from_string(obis),
        attribute=attribute,
    )


def _read_register(client: DlmsClient, obis: str) -> tuple[Decimal, int, int]:
    scaler, unit = _decode(client.get(_register(obis, 3)))
    raw = _decode(client.get(_register(obis, 2)))
    return Decimal(raw).scaleb(scaler), scaler, unit


def test_clock_is_read_as_the_meter_time(meter: DlmsMeterSimulator) -> None:
    clock = cosem.CosemAttribute(
        interface=enumerations.CosemInterface.CLOCK,
        instance=cosem.Obis.from_string(CLOCK_OBIS),
        attribute=2,
    )
    with _client(meter).session() as client:
        when, status = datetime_from_bytes(_decode(client.get(clock)))
    # dlms-cosem leaves a deviation of 0 without tzinfo; the simulator sends UTC.
    assert when.replace(tzinfo=when.tzinfo or UTC) == METER_TIME
    assert status is not None
    assert not status.invalid


@pytest.mark.parametrize(("obis", "scaler_unit"), EXPECTED.items(), ids=list(EXPECTED))
def test_register_scaler_unit_and_value(
    meter: DlmsMeterSimulator, obis: str, scaler_unit: tuple[int, str]
) -> None:
    with _client(meter).session() as client:
        value, scaler, unit = _read_register(client, obis)
    assert (scaler, unit) == (scaler_unit[0], UNIT_CODES[scaler_unit[1]])
    assert value == meter.value(obis)


def test_every_register_has_a_non_trivial_scaler_or_unit(meter: DlmsMeterSimulator) -> None:
    with _client(meter).session() as client:
        for spec in REGISTERS:
            value, scaler, unit = _read_register(client, spec.obis)
            assert (scaler, unit) == (spec.scaler, int(spec.unit)), spec.obis
            assert value == spec.initial or spec.obis in (ENERGY_IMPORT_OBIS, ENERGY_EXPORT_OBIS)


def test_changed_value_is_seen_on_the_next_read(meter: DlmsMeterSimulator) -> None:
    with _client(meter).session() as client:
        before, _, _ = _read_register(client, "1.0.32.7.0.255")
        meter.set_value("1.0.32.7.0.255", Decimal("231.2"))
        after, _, _ = _read_register(client, "1.0.32.7.0.255")
    assert (before, after) == (Decimal("230.1"), Decimal("231.2"))


def test_value_that_the_scaler_cannot_represent_is_refused(meter: DlmsMeterSimulator) -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        meter.set_value("1.0.32.7.0.255", Decimal("231.25"))


def test_wrong_password_is_refused(meter: DlmsMeterSimulator) -> None:
    client = _client(meter, password="wrong")
    client.connect()
    try:
        with pytest.raises(exceptions.DlmsClientException, match="REJECTED"):
            client.associate()
    finally:
        client.disconnect()


def test_profile_range_read_returns_exactly_the_rows_in_range(
    meter: DlmsMeterSimulator,
) -> None:
    start = PROFILE_START + timedelta(hours=2)
    end = PROFILE_START + timedelta(hours=5)
    clock_column = CaptureObject(
        cosem_attribute=cosem.CosemAttribute(
            interface=enumerations.CosemInterface.CLOCK,
            instance=cosem.Obis.from_string(CLOCK_OBIS),
            attribute=2,
        )
    )
    energy_columns = [
        CaptureObject(cosem_attribute=_register(obis, 2))
        for obis in (ENERGY_IMPORT_OBIS, ENERGY_EXPORT_OBIS)
    ]
    buffer = cosem.CosemAttribute(
        interface=enumerations.CosemInterface.PROFILE_GENERIC,
        instance=cosem.Obis.from_string(PROFILE_OBIS),
        attribute=2,
    )
    with _client(meter).session() as client:
        raw = client.get(buffer, access_descriptor=RangeDescriptor(clock_column, start, end))
    status = cosem.CosemAttribute(
        interface=enumerations.CosemInterface.DATA,
        instance=cosem.Obis.from_string(PROFILE_STATUS_OBIS),
        attribute=2,
    )
    parser = ProfileGenericBufferParser(
        capture_objects=[clock_column.cosem_attribute, status]
        + [c.cosem_attribute for c in energy_columns],
        capture_period=15,
    )
    rows = [[column.value for column in row if column] for row in parser.parse_bytes(raw)]
    expected = [r for r in meter.profile_rows if start <= r[0] <= end]
    assert len(expected) == 13  # 02:00 .. 05:00 inclusive, every 15 minutes
    got = [
        (when.replace(tzinfo=when.tzinfo or UTC), Decimal(imp) * 10, Decimal(exp) * 10)
        for when, _status, imp, exp in rows
    ]
    assert got == expected
    assert {row[1] for row in rows} == {0}


def test_advance_profile_appends_a_period_and_moves_the_energy_register(
    meter: DlmsMeterSimulator,
) -> None:
    last = meter.profile_rows[-1]
    meter.advance_profile(2)
    rows = meter.profile_rows
    assert [r[0] for r in rows[-2:]] == [
        last[0] + timedelta(minutes=15),
        last[0] + timedelta(minutes=30),
    ]
    assert rows[-1][1] == meter.value(ENERGY_IMPORT_OBIS) > last[1]


def test_stop_drops_open_connections_and_start_serves_again(
    meter: DlmsMeterSimulator,
) -> None:
    conn = socket.create_connection(("127.0.0.1", meter.port), timeout=5)
    with conn:
        _wait_for(lambda: meter.connection_count == 1)
        meter.stop()
        assert conn.recv(1) == b""  # EOF: the meter went away
    assert meter.connection_count == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", meter.port), timeout=5).close()
    meter.start()
    with _client(meter).session() as client:
        value, _, _ = _read_register(client, "1.0.32.7.0.255")
    assert value == Decimal("230.1")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return False
    return True


def test_entry_point_serves_until_sigterm() -> None:
    """`python -m hil.dlms_meter --port N` as the demo rig starts it."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.dlms_meter", "--port", str(port), "--password", PASSWORD],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: _connectable(port) or proc.poll() is not None, timeout=20)
        client = DlmsClient.with_tcp_transport(
            host="127.0.0.1",
            port=port,
            client_logical_address=17,
            server_logical_address=1,
            authentication_method=enumerations.AuthenticationMechanism.LLS,
            password=PASSWORD.encode(),
            timeout=5,
        )
        with client.session():
            scaler, unit = _decode(client.get(_register("1.0.32.7.0.255", 3)))
        assert (scaler, unit) == (-1, UNIT_CODES["V"])
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr.decode()
    assert f"on 127.0.0.1:{port}" in stderr.decode()


class _RawGuruxClient:
    """gurux's client driven by hand, to send requests out of the normal order."""

    def __init__(
        self,
        meter: DlmsMeterSimulator,
        *,
        hdlc: bool = False,
        authentication: int = Authentication.HIGH_GMAC,
        password: str | None = None,
    ) -> None:
        self.client = GXDLMSSecureClient(
            True,
            1,
            1,
            authentication,
            password,
            InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER,
        )
        self.client.ciphering.systemTitle = bytearray(b"RTU00001")
        self.sock = socket.create_connection(("127.0.0.1", meter.port), timeout=5)

    def request(self, frames: Any) -> Any:
        reply = GXReplyData()
        for frame in frames if isinstance(frames, list) else [frames]:
            self.sock.sendall(bytes(frame))
            received = GXByteBuffer()
            while not self.client.getData(received, reply, GXReplyData()):
                received.set(self.sock.recv(4096))
        return reply


@pytest.mark.parametrize("hdlc", [False, True], ids=["wrapper", "hdlc"])
def test_no_get_before_the_hls_association_is_established(hdlc: bool) -> None:
    with DlmsMeterSimulator(hdlc=hdlc) as meter:
        _get_refused_until_hls_completes(_RawGuruxClient(meter, hdlc=hdlc), hdlc=hdlc)


def _get_refused_until_hls_completes(raw: _RawGuruxClient, *, hdlc: bool) -> None:
    voltage = GXDLMSRegister("1.0.32.7.0.255")
    with raw.sock:
        if hdlc:
            raw.client.parseUAResponse(raw.request(raw.client.snrmRequest()).data)
        raw.client.parseAareResponse(raw.request(raw.client.aarqRequest()).data)
        assert raw.client.isAuthenticationRequired  # AARE: accepted, HLS pending
        with pytest.raises(GXDLMSConfirmedServiceError):
            raw.request(raw.client.read(voltage, 2))
        reply = raw.request(raw.client.getApplicationAssociationRequest())
        raw.client.parseApplicationAssociationResponse(reply.data)
        assert raw.request(raw.client.read(voltage, 2)[0]).value == 2301


def test_profile_range_read_of_selected_columns(meter: DlmsMeterSimulator) -> None:
    raw = _RawGuruxClient(meter, authentication=Authentication.LOW, password=PASSWORD)
    profile = GXDLMSProfileGeneric(PROFILE_OBIS)
    start, end = PROFILE_START, PROFILE_START + timedelta(minutes=30)
    with raw.sock:
        raw.client.parseAareResponse(raw.request(raw.client.aarqRequest()).data)
        raw.client.updateValue(profile, 3, raw.request(raw.client.read(profile, 3)[0]).value)
        clock, _, imported, _ = profile.captureObjects
        frames = raw.client.readRowsByRange(profile, start, end, [clock, imported])
        rows = raw.request(frames).value
    expected = [(when, imp) for when, imp, _ in meter.profile_rows if start <= when <= end]
    assert {len(r) for r in rows} == {2}  # only the two columns asked for
    assert [(_gx_to_datetime(r[0]), Decimal(r[1]) * 10) for r in rows] == expected


def _gx_to_datetime(raw: bytes) -> datetime:
    when, _ = datetime_from_bytes(bytes(raw))
    return when.replace(tzinfo=when.tzinfo or UTC)
