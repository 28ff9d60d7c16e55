"""GetFile end to end at the station side: the answer, the file, the upload to a real
server, and the GetFileStatusNotifications (with requestId), including failures."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from os3p.actions import Action
from os3p.messages import (
    FileType,
    GetFileRequest,
    GetFileStatus,
    GetFileStatusNotificationRequest,
    to_payload,
)
from os3p.validation import Validator
from rtu.files.content import configure_log_file
from rtu.files.getfile import FileSettings, GetFileService, Upload
from rtu.metering.history import History
from rtu.metering.model import Sample
from tests.rtu.files.servers import ftp_server, http_receiver
from tests.support.aio import eventually, run
from tests.support.tls import make_pki

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
VALIDATOR = Validator()
REQUEST_ID = "0f0e0d0c-0b0a-0908-0706-050403020100"
CONFIG = """\
[station]
id = "SUBS 001"
[central]
url = "wss://central.example/OS3P"
password = "station-secret"
[mqtt]
host = "broker"
password_file = "/etc/rtu/mqtt.pw"
[[meters]]
kind = "dlms"
name = "trafo"
password = "meter-secret"
authentication_key = "000102030405060708090a0b0c0d0e0f"
"""


class Rig:
    def __init__(self, service: GetFileService, history: History) -> None:
        self.service = service
        self.history = history
        self.notifications: list[dict[str, Any]] = []
        self.sleeps: list[float] = []


@contextlib.asynccontextmanager
async def getfile(
    tmp_path: Path,
    *,
    settings: FileSettings | None = None,
    upload: Upload | None = None,
    journal: bool = False,
) -> AsyncIterator[Rig]:
    history = await History.open(tmp_path / "data" / "metering.db", now=lambda: T0)
    notifications: list[dict[str, Any]] = []
    sleeps: list[float] = []

    async def emit(message: msgspec.Struct) -> None:
        assert isinstance(message, GetFileStatusNotificationRequest)
        payload = to_payload(message)
        VALIDATOR.check_outgoing(Action.GET_FILE_STATUS_NOTIFICATION, "Request", payload)
        notifications.append(payload)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    config_file = tmp_path / "rtu.toml"
    config_file.write_text(CONFIG)
    service = GetFileService(
        station_id="SUBS 001",
        emit=emit,
        now=lambda: T0 + timedelta(hours=1),
        history=history,
        settings=settings or FileSettings(backoff=1.0),
        status=lambda: {"link": {"state": "accepted"}},
        config_file=config_file,
        data_dir=tmp_path / "data",
        upload=upload,
        sleep=sleep,
        journal_available=lambda: journal,
    )
    rig = Rig(service, history)
    rig.notifications = notifications
    rig.sleeps = sleeps
    try:
        async with asyncio.TaskGroup() as tasks:
            loop = tasks.create_task(service.upload_loop())
            try:
                yield rig
            finally:
                loop.cancel()
    finally:
        await history.close()


def statuses(rig: Rig) -> list[tuple[str, str | None]]:
    return [(n["status"], n.get("requestId")) for n in rig.notifications]


def done(rig: Rig, count: int = 1) -> Callable[[], bool]:
    return lambda: (
        sum(n["status"] in ("Uploaded", "UploadFailed") for n in rig.notifications) >= count
    )


def test_meter_value_history_is_uploaded_as_csv_over_http(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with http_receiver() as receiver, getfile(tmp_path) as rig:
            for minutes, volts in ((0, "230.1"), (15, "231.0"), (30, "229.5")):
                stamp = T0 + timedelta(minutes=minutes)
                await rig.history.append(
                    "trafo", "Sample.Clock", stamp,
                    [Sample("Voltage.L1N", Decimal(volts), "V", stamp),
                     Sample("PowerFactor.Sum", Decimal("0.98"), None, stamp)],
                )  # fmt: skip
            await rig.history.append(
                "p1", "Sample.Periodic", T0,
                [Sample("Power.Active.Import", Decimal("1.5"), "kW", T0, "P1Meter")],
            )  # fmt: skip
            response = await rig.service.get_file(
                GetFileRequest(
                    request_id=REQUEST_ID,
                    file_type=FileType.METER_VALUE_HISTORY,
                    location=receiver.url,
                    start_time=T0,
                    stop_time=T0 + timedelta(minutes=15),
                )
            )
            assert response.status is GetFileStatus.ACCEPTED
            assert response.file_name == (
                "SUBS_001_MeterValueHistory_20260504T100000Z-20260504T101500Z.csv"
            )
            await eventually(done(rig), what="upload finished")
            assert statuses(rig) == [("Uploading", REQUEST_ID), ("Uploaded", REQUEST_ID)]
            text = receiver.files[response.file_name].decode()
        rows = list(csv.reader(io.StringIO(text)))
        assert rows == [
            ["timestamp", "measurand", "value", "unit", "location", "context", "source"],
            ["2026-05-04T10:00:00Z", "Voltage.L1N", "230.1", "V", "", "Sample.Clock", "trafo"],
            ["2026-05-04T10:00:00Z", "PowerFactor.Sum", "0.98", "", "", "Sample.Clock", "trafo"],
            ["2026-05-04T10:00:00Z", "Power.Active.Import", "1.5", "kW", "P1Meter",
             "Sample.Periodic", "p1"],
            ["2026-05-04T10:15:00Z", "Voltage.L1N", "231.0", "V", "", "Sample.Clock", "trafo"],
            ["2026-05-04T10:15:00Z", "PowerFactor.Sum", "0.98", "", "", "Sample.Clock", "trafo"],
        ]  # fmt: skip
        assert text.endswith("\r\n")

    run(scenario())


def test_vendor_specific_bundle_over_ftp_without_secrets(tmp_path: Path) -> None:
    async def scenario() -> None:
        target = tmp_path / "ftp"
        (target / "diag").mkdir(parents=True)
        with ftp_server(target) as url:
            async with getfile(tmp_path) as rig:
                response = await rig.service.get_file(
                    GetFileRequest(file_type=FileType.VENDOR_SPECIFIC, location=url + "diag/")
                )
                await eventually(done(rig), what="upload finished")
        assert statuses(rig) == [("Uploading", None), ("Uploaded", None)]
        assert response.file_name == "SUBS_001_Diagnostics_20260504T110000Z.zip"
        with zipfile.ZipFile(target / "diag" / response.file_name) as bundle:
            assert sorted(bundle.namelist()) == ["config.json", "databases.json", "status.json"]
            config = json.loads(bundle.read("config.json"))
            status = json.loads(bundle.read("status.json"))
            databases = json.loads(bundle.read("databases.json"))
        text = json.dumps(config)
        assert "secret" not in text
        assert "authentication_key" not in text
        assert "password_file" not in text
        assert config["meters"][0]["name"] == "trafo"
        assert config["central"]["url"] == "wss://central.example/OS3P"
        assert status["link"] == {"state": "accepted"}
        assert status["history"]["rows"] == 0
        assert databases["metering.db"]["tables"] == {"samples": 0}

    run(scenario())


def test_syslog_from_the_rotating_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "log" / "rtu.log"
    handler = configure_log_file(log_file, max_bytes=1 << 20, backups=2)
    logger = logging.getLogger("tests.getfile")
    logger.setLevel(logging.INFO)
    try:
        logger.info("before the period")
        logger.warning("inside the period")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    lines = log_file.read_text().splitlines()
    first = datetime.fromisoformat(lines[0].split(" ")[0].replace("Z", "+00:00"))
    second = datetime.fromisoformat(lines[1].split(" ")[0].replace("Z", "+00:00"))
    # Rewrite the first record's time so that the period excludes it.
    early = first - timedelta(hours=1)
    lines[0] = early.strftime("%Y-%m-%dT%H:%M:%S.000Z") + lines[0][lines[0].index(" ") :]
    lines.insert(1, "Traceback (a continuation line of the first record)")
    log_file.write_text("\n".join(lines) + "\n")

    async def scenario() -> None:
        async with (
            http_receiver() as receiver,
            getfile(tmp_path, settings=FileSettings(log_file=log_file)) as rig,
        ):
            response = await rig.service.get_file(
                GetFileRequest(
                    file_type=FileType.SYSLOG,
                    location=receiver.url,
                    start_time=second - timedelta(seconds=1),
                    stop_time=second + timedelta(seconds=1),
                )
            )
            assert response.status is GetFileStatus.ACCEPTED
            assert response.file_name.endswith(".log")
            await eventually(done(rig), what="upload finished")
            text = receiver.files[response.file_name].decode()
        assert "inside the period" in text
        assert "before the period" not in text
        assert "Traceback" not in text

    run(scenario())


def test_rejected_with_an_empty_file_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with getfile(tmp_path, journal=False) as rig:
            no_log = await rig.service.get_file(
                GetFileRequest(file_type=FileType.SYSLOG, location="http://127.0.0.1/")
            )
            bad_scheme = await rig.service.get_file(
                GetFileRequest(file_type=FileType.VENDOR_SPECIFIC, location="mailto:ops@example")
            )
        for response in (no_log, bad_scheme):
            assert (response.status, response.file_name) == (GetFileStatus.REJECTED, "")
        assert rig.notifications == []

    run(scenario())


def test_failed_uploads_are_retried_with_backoff_then_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            http_receiver() as receiver,
            getfile(tmp_path, settings=FileSettings(attempts=3, backoff=2.0)) as rig,
        ):
            receiver.fail_first = 10
            await rig.service.get_file(
                GetFileRequest(
                    request_id="r1", file_type=FileType.METER_VALUE_HISTORY, location=receiver.url
                )
            )
            await eventually(done(rig), what="gave up")
            assert statuses(rig) == [("Uploading", "r1"), ("UploadFailed", "r1")]
            assert receiver.attempts == 3
            assert rig.sleeps == [2.0, 4.0]
            # A later request succeeds once the server is back.
            receiver.fail_first = 1
            await rig.service.get_file(
                GetFileRequest(
                    request_id="r2", file_type=FileType.METER_VALUE_HISTORY, location=receiver.url
                )
            )
            await eventually(done(rig, 2), what="second upload")
            assert statuses(rig)[2:] == [("Uploading", "r2"), ("Uploaded", "r2")]
            assert rig.service.snapshot()["failed"] == 1

    run(scenario())


def test_triggered_status_is_uploading_while_busy_and_none_when_idle(tmp_path: Path) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_upload(location: str, name: str, data: bytes) -> None:
        started.set()
        await release.wait()

    async def scenario() -> None:
        async with getfile(tmp_path, upload=slow_upload) as rig:

            async def status() -> dict[str, Any]:
                (message,) = await rig.service.current_status(None)
                return to_payload(message)

            assert await status() == {"status": "None"}
            await rig.service.get_file(
                GetFileRequest(
                    request_id="busy", file_type=FileType.VENDOR_SPECIFIC, location="ftp://h/"
                )
            )
            await started.wait()
            assert await status() == {"status": "Uploading", "requestId": "busy"}
            release.set()
            await eventually(done(rig), what="finished")
            assert await status() == {"status": "None"}

    run(scenario())


def test_https_and_ftps_locations_trust_the_configured_ca(tmp_path: Path) -> None:
    """`[metering] upload_ca_file` reaches the service's uploads: the operator's own CA
    signs both servers' certificates."""
    pki = make_pki(tmp_path / "pki")
    target = tmp_path / "ftps"
    target.mkdir()

    async def scenario() -> None:
        with ftp_server(target, tls=pki) as ftps:
            async with (
                http_receiver(pki.server_context()) as receiver,
                getfile(tmp_path, settings=FileSettings(ca_file=pki.ca_cert)) as rig,
            ):
                https = await rig.service.get_file(
                    GetFileRequest(
                        request_id="https",
                        file_type=FileType.VENDOR_SPECIFIC,
                        location=receiver.url,
                    )
                )
                await eventually(done(rig), what="https upload finished")
                ftps_answer = await rig.service.get_file(
                    GetFileRequest(
                        request_id="ftps", file_type=FileType.VENDOR_SPECIFIC, location=ftps
                    )
                )
                await eventually(done(rig, 2), what="ftps upload finished")
        assert statuses(rig) == [
            ("Uploading", "https"), ("Uploaded", "https"),
            ("Uploading", "ftps"), ("Uploaded", "ftps"),
        ]  # fmt: skip
        assert zipfile.is_zipfile(io.BytesIO(receiver.files[https.file_name]))
        assert zipfile.is_zipfile(target / ftps_answer.file_name)

    run(scenario())
