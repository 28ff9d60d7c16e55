"""rtu.metering.dlms against the DLMS meter simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

import pytest
from dlms_cosem import a_xdr, cosem, enumerations
from dlms_cosem.clients.dlms_client import DlmsClient
from dlms_cosem.time import datetime_from_bytes

from hil.dlms_meter import (
    GREEN_BOOK_AUTHENTICATION_KEY,
    GREEN_BOOK_BLOCK_CIPHER_KEY,
    DlmsMeterSimulator,
)
from rtu.metering.dlms import (
    DEFAULT_REGISTERS,
    CosemDateTimeError,
    DlmsConfig,
    DlmsDataError,
    DlmsMeter,
    decode_cosem_datetime,
    os3p_unit,
    scale,
)
from rtu.metering.model import MeterSource, Sample, SourceError

PASSWORD = "secret-1"
METER_TIME = datetime(2026, 3, 29, 10, 17, 42, tzinfo=UTC)
PROFILE_START = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
Transport = Literal["wrapper", "hdlc", "serial"]
TRANSPORTS: tuple[Transport, ...] = ("wrapper", "hdlc", "serial")

_T = TypeVar("_T")

# OBIS → (measurand, value, unit) for the simulator's initial values: the
# mapping table of rtu.metering.dlms, written out independently.
EXPECTED: dict[str, tuple[str, Decimal, str]] = {
    "1.0.32.7.0.255": ("Voltage.L1N", Decimal("230.1"), "V"),
    "1.0.52.7.0.255": ("Voltage.L2N", Decimal("229.8"), "V"),
    "1.0.72.7.0.255": ("Voltage.L3N", Decimal("231.0"), "V"),
    "1.0.31.7.0.255": ("Current.L1", Decimal("312.45"), "A"),
    "1.0.51.7.0.255": ("Current.L2", Decimal("298.10"), "A"),
    "1.0.71.7.0.255": ("Current.L3", Decimal("305.00"), "A"),
    "1.0.21.7.0.255": ("ActivePower.L1", Decimal("68900"), "W"),
    "1.0.41.7.0.255": ("ActivePower.L2", Decimal("66210"), "W"),
    "1.0.61.7.0.255": ("ActivePower.L3", Decimal("70200"), "W"),
    "1.0.1.7.0.255": ("ActivePower.Sum", Decimal("205310"), "W"),
    "1.0.23.7.0.255": ("ReactivePower.L1", Decimal("13810"), "var"),
    "1.0.43.7.0.255": ("ReactivePower.L2", Decimal("13400"), "var"),
    "1.0.63.7.0.255": ("ReactivePower.L3", Decimal("14020"), "var"),
    "1.0.3.7.0.255": ("ReactivePower.Sum", Decimal("41230"), "var"),
    "1.0.1.8.0.255": ("RealEnergyConsumed.Sum", Decimal("123456780"), "Wh"),
    "1.0.2.8.0.255": ("RealEnergyDelivered.Sum", Decimal("2345670"), "Wh"),
}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    value: Transport = request.param
    return value


@pytest.fixture
def meter(transport: Transport) -> Iterator[DlmsMeterSimulator]:
    # The simulator starts its history at PROFILE_START and ends it at the
    # register values EXPECTED lists, so the last profile row matches them.
    sim = DlmsMeterSimulator(
        password=PASSWORD,
        hdlc=transport == "hdlc",
        serial=transport == "serial",
        profile_start=PROFILE_START,
        profile_periods=96,
    )
    sim.set_clock(METER_TIME)
    with sim:
        yield sim


def config(meter: DlmsMeterSimulator, transport: Transport, **overrides: Any) -> DlmsConfig:
    fields: dict[str, Any] = {
        "port": meter.port,
        "transport": transport,
        "authentication": "low",
        "password": PASSWORD,
        "client_address": 17,
        # A silent serial meter is only noticed by timeout; loopback answers in ms.
        "timeout": 0.5 if transport == "serial" else 2.0,
    }
    if transport == "serial":
        fields["serial_port"] = meter.serial_port
    fields.update(overrides)
    return DlmsConfig(**fields)


def with_source(cfg: DlmsConfig, body: Callable[[DlmsMeter], Awaitable[_T]]) -> _T:
    """Run `body` against a DlmsMeter in a fresh event loop and close it afterwards."""

    async def main() -> _T:
        source = DlmsMeter("transformer", cfg)
        try:
            return await body(source)
        finally:
            await source.close()

    return asyncio.run(main())


def by_measurand(samples: Any) -> dict[str, Sample]:
    return {s.measurand: s for s in samples}


def test_dlms_meter_is_a_meter_source() -> None:
    source: MeterSource = DlmsMeter("m", DlmsConfig())
    assert source.name == "m"


def test_every_register_is_read_scaled_with_its_unit_and_the_meter_time(
    meter: DlmsMeterSimulator, transport: Transport
) -> None:
    samples = with_source(config(meter, transport), lambda m: m.read())
    assert [s.measurand for s in samples] == [EXPECTED[obis][0] for obis in DEFAULT_REGISTERS]
    got = by_measurand(samples)
    for obis, (measurand, value, unit) in EXPECTED.items():
        sample = got[measurand]
        assert (sample.value, sample.unit) == (value, unit), obis
        assert str(sample.value) == str(value), obis  # resolution kept, no exponent form
        assert sample.timestamp == METER_TIME
        assert sample.timestamp.tzinfo is UTC


@pytest.mark.parametrize("transport", ["wrapper"])
def test_changed_value_is_seen_on_the_next_read_over_the_same_association(
    meter: DlmsMeterSimulator,
) -> None:
    async def body(source: DlmsMeter) -> tuple[Decimal, Decimal, int]:
        first = by_measurand(await source.read())["Voltage.L1N"].value
        meter.set_value("1.0.32.7.0.255", Decimal("231.2"))
        meter.set_clock(METER_TIME + timedelta(seconds=5))
        second = by_measurand(await source.read())["Voltage.L1N"]
        assert second.timestamp == METER_TIME + timedelta(seconds=5)
        return first, second.value, meter.connection_count

    first, second, connections = with_source(config(meter, "wrapper"), body)
    assert (first, second) == (Decimal("230.1"), Decimal("231.2"))
    assert connections == 1  # the association was kept between polls


def test_profile_range_read_returns_exactly_the_rows_in_range_scaled(
    meter: DlmsMeterSimulator, transport: Transport
) -> None:
    start = PROFILE_START + timedelta(hours=20, minutes=7)  # between two captures
    end = PROFILE_START + timedelta(hours=23)  # exactly on one: inclusive
    rows = with_source(config(meter, transport), lambda m: m.read_profile(start, end))
    expected = [r for r in meter.profile_rows if start <= r[0] <= end]
    assert len(expected) == 12  # 20:15 .. 23:00
    assert [r.timestamp for r in rows] == [e[0] for e in expected]
    for row, (when, imported, exported) in zip(rows, expected, strict=True):
        assert [(s.measurand, s.value, s.unit, s.timestamp) for s in row.samples] == [
            ("RealEnergyConsumed.Sum", imported, "Wh", when),
            ("RealEnergyDelivered.Sum", exported, "Wh", when),
        ]


@pytest.mark.parametrize("transport", ["wrapper"])
def test_profile_after_advance_fills_the_gap(meter: DlmsMeterSimulator) -> None:
    last = meter.profile_rows[-1][0]

    async def body(source: DlmsMeter) -> int:
        assert (
            len(await source.read_profile(last + timedelta(seconds=1), last + timedelta(hours=1)))
            == 0
        )
        meter.advance_profile(3)  # the RTU was away for three quarter-hours
        rows = await source.read_profile(last + timedelta(seconds=1), last + timedelta(hours=1))
        energy = by_measurand(await source.read())["RealEnergyConsumed.Sum"].value
        assert rows[-1].samples[0].value == energy
        return len(rows)

    assert with_source(config(meter, "wrapper"), body) == 3


def test_empty_profile_range_gives_no_rows(meter: DlmsMeterSimulator, transport: Transport) -> None:
    start = PROFILE_START - timedelta(days=2)
    rows = with_source(
        config(meter, transport), lambda m: m.read_profile(start, start + timedelta(hours=1))
    )
    assert rows == []


def test_no_authentication_as_public_client(
    meter: DlmsMeterSimulator, transport: Transport
) -> None:
    cfg = config(meter, transport, authentication="none", password="", client_address=16)
    samples = with_source(cfg, lambda m: m.read())
    assert by_measurand(samples)["Voltage.L1N"].value == Decimal("230.1")


HLS = {
    "authentication": "hls-gmac",
    "password": "",
    "client_address": 1,  # the management client, customary for HLS
    "block_cipher_key": GREEN_BOOK_BLOCK_CIPHER_KEY,
    "authentication_key": GREEN_BOOK_AUTHENTICATION_KEY,
}


def test_hls_gmac_association(meter: DlmsMeterSimulator, transport: Transport) -> None:
    samples = with_source(config(meter, transport, **HLS), lambda m: m.read())
    assert by_measurand(samples)["Voltage.L1N"].value == Decimal("230.1")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"password": "wrong"}, id="wrong-password"),
        pytest.param({**HLS, "authentication_key": bytes(16)}, id="hls-wrong-key"),
        pytest.param({**HLS, "block_cipher_key": bytes(16)}, id="hls-wrong-cipher-key"),
        pytest.param({"authentication": "none", "password": ""}, id="no-password-as-client-17"),
    ],
)
def test_refused_association_is_a_source_error(
    meter: DlmsMeterSimulator, transport: Transport, overrides: dict[str, Any]
) -> None:
    with pytest.raises(SourceError) as info:
        with_source(config(meter, transport, **overrides), lambda m: m.read())
    assert info.value.source == "transformer"


def test_meter_stopped_is_a_source_error_and_restart_reconnects(
    meter: DlmsMeterSimulator, transport: Transport
) -> None:
    async def body(source: DlmsMeter) -> None:
        assert len(await source.read()) == len(DEFAULT_REGISTERS)
        meter.stop()
        with pytest.raises(SourceError, match="transformer"):
            await source.read()
        with pytest.raises(SourceError):
            await source.read()  # still down: fails fast, no hang
        meter.start()
        meter.set_value("1.0.32.7.0.255", Decimal("228.0"))
        assert by_measurand(await source.read())["Voltage.L1N"].value == Decimal("228.0")

    with_source(config(meter, transport), body)


@pytest.mark.parametrize("transport", ["wrapper"])
def test_association_dropped_by_the_meter_is_reopened_without_a_failed_poll(
    meter: DlmsMeterSimulator,
) -> None:
    async def body(source: DlmsMeter) -> None:
        await source.read()
        meter.stop()  # drops the connection, as an inactivity timeout would
        meter.start()
        assert len(await source.read()) == len(DEFAULT_REGISTERS)

    with_source(config(meter, "wrapper"), body)


@pytest.mark.parametrize("transport", ["wrapper"])
def test_close_releases_and_the_next_read_reconnects(meter: DlmsMeterSimulator) -> None:
    async def body(source: DlmsMeter) -> None:
        await source.read()
        await source.close()
        assert len(await source.read()) == len(DEFAULT_REGISTERS)

    with_source(config(meter, "wrapper"), body)


def test_nothing_listening_is_a_source_error() -> None:
    with DlmsMeterSimulator() as sim:
        port = sim.port
    cfg = DlmsConfig(port=port, timeout=1.0)
    with pytest.raises(SourceError, match="ConnectionRefusedError"):
        with_source(cfg, lambda m: m.read())


@pytest.mark.parametrize("transport", ["wrapper"])
def test_independent_client_dlms_cosem_agrees_with_ours(meter: DlmsMeterSimulator) -> None:
    """dlms-cosem (pwitab) reads clock and registers; both clients must agree."""
    obis_codes = ["1.0.32.7.0.255", "1.0.31.7.0.255", "1.0.21.7.0.255", "1.0.1.8.0.255"]
    meter.set_value("1.0.31.7.0.255", Decimal("17.03"))
    ours = by_measurand(with_source(config(meter, "wrapper"), lambda m: m.read()))

    decoder = a_xdr.AXdrDecoder(
        encoding_conf=a_xdr.EncodingConf(attributes=[a_xdr.Sequence(attribute_name="data")])
    )

    def get(client: DlmsClient, interface: Any, obis: str, attribute: int) -> Any:
        attr = cosem.CosemAttribute(
            interface=interface, instance=cosem.Obis.from_string(obis), attribute=attribute
        )
        return decoder.decode(client.get(attr))["data"]

    theirs: dict[str, tuple[Decimal, int]] = {}
    client = DlmsClient.with_tcp_transport(
        host="127.0.0.1",
        port=meter.port,
        client_logical_address=17,
        server_logical_address=1,
        authentication_method=enumerations.AuthenticationMechanism.LLS,
        password=PASSWORD.encode(),
        timeout=5,
    )
    with client.session():
        clock_raw = get(client, enumerations.CosemInterface.CLOCK, "0.0.1.0.0.255", 2)
        for obis in obis_codes:
            scaler, unit = get(client, enumerations.CosemInterface.REGISTER, obis, 3)
            raw = get(client, enumerations.CosemInterface.REGISTER, obis, 2)
            theirs[obis] = (Decimal(raw).scaleb(scaler), unit)

    their_time, _ = datetime_from_bytes(clock_raw)
    assert their_time.replace(tzinfo=their_time.tzinfo or UTC) == ours["Voltage.L1N"].timestamp
    assert decode_cosem_datetime(bytes(clock_raw)) == ours["Voltage.L1N"].timestamp
    unit_names = {35: "V", 33: "A", 27: "W", 30: "Wh"}
    for obis in obis_codes:
        sample = ours[EXPECTED[obis][0]]
        value, unit = theirs[obis]
        assert (value, unit_names[unit]) == (sample.value, sample.unit), obis
    assert ours["Current.L1"].value == Decimal("17.03")


# -- pure pieces, no sockets ---------------------------------------------------


def _dt(year: int, *rest: int, deviation: int = 0, hundredths: int = 0) -> bytes:
    month, day, hour, minute, second = rest
    return (
        year.to_bytes(2, "big")
        + bytes([month, day, 0xFF, hour, minute, second, hundredths])
        + deviation.to_bytes(2, "big", signed=True)
        + b"\x00"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(_dt(2026, 3, 29, 10, 17, 42), METER_TIME, id="utc"),
        pytest.param(
            _dt(2026, 3, 29, 11, 17, 42, deviation=-60), METER_TIME, id="cet-deviation-minus-60"
        ),
        pytest.param(
            _dt(2026, 3, 29, 10, 17, 42, deviation=-0x8000), METER_TIME, id="deviation-unspecified"
        ),
        pytest.param(
            _dt(2026, 3, 29, 10, 17, 42, hundredths=50),
            METER_TIME + timedelta(milliseconds=500),
            id="hundredths",
        ),
        pytest.param(
            _dt(2026, 3, 29, 10, 17, 42, hundredths=0xFF), METER_TIME, id="hundredths-unspecified"
        ),
    ],
)
def test_decode_cosem_datetime(raw: bytes, expected: datetime) -> None:
    assert decode_cosem_datetime(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x07\xea\x03", id="short"),
        pytest.param(_dt(0xFFFF, 3, 29, 10, 17, 42), id="wildcard-year"),
        pytest.param(_dt(2026, 0xFF, 29, 10, 17, 42), id="wildcard-month"),
        pytest.param(_dt(2026, 2, 30, 10, 17, 42), id="no-such-day"),
    ],
)
def test_decode_cosem_datetime_refuses(raw: bytes) -> None:
    with pytest.raises(CosemDateTimeError):
        decode_cosem_datetime(raw)


@pytest.mark.parametrize(
    ("raw", "scaler", "text"),
    [
        (2301, -1, "230.1"),
        (30500, -2, "305.00"),
        (12345678, 1, "123456780"),
        (-4200, 0, "-4200"),
        (7, 3, "7000"),
    ],
)
def test_scale_is_exact_and_readable(raw: int, scaler: int, text: str) -> None:
    assert str(scale(raw, scaler)) == text


def test_unit_must_match_the_table() -> None:
    assert os3p_unit("1.0.1.8.0.255", 30) == "Wh"
    with pytest.raises(DlmsDataError, match="table expects 'Wh'"):
        os3p_unit("1.0.1.8.0.255", 32)  # varh where active energy is mapped


def test_config_refuses_hls_without_keys() -> None:
    with pytest.raises(ValueError, match="16-byte keys"):
        DlmsConfig(authentication="hls-gmac", authentication_key=b"short")


def test_config_keeps_secrets_out_of_its_repr() -> None:
    text = repr(DlmsConfig(**{**HLS, "password": "pw-123"}))
    assert "pw-123" not in text
    assert GREEN_BOOK_AUTHENTICATION_KEY.hex() not in text
    assert repr(GREEN_BOOK_AUTHENTICATION_KEY) not in text


def test_config_refuses_unmapped_obis() -> None:
    with pytest.raises(ValueError, match=r"1\.0\.1\.8\.1\.255"):
        DlmsConfig(registers=("1.0.1.8.1.255",))


def test_whole_day_of_profile_spans_several_blocks(
    meter: DlmsMeterSimulator, transport: Transport
) -> None:
    # 96 rows × 24 bytes is more than the meter's 1024-byte PDU: GET-with-block
    # (and, on HDLC, segmentation into many I-frames) must reassemble it.
    rows = with_source(
        config(meter, transport),
        lambda m: m.read_profile(PROFILE_START, PROFILE_START + timedelta(days=1)),
    )
    assert len(rows) == 96
    assert [(r.timestamp, r.samples[0].value) for r in rows] == [
        (when, imported) for when, imported, _ in meter.profile_rows
    ]
