"""`make demo`: the whole system on loopback — central, 3 stations, their simulators.

What it shows, live, until Ctrl-C:
1. the central system starts (embedded SQLite) and registers three stations;
2. each station's daemon starts against its own Modbus I/O module simulator,
   connects, boots and is Accepted;
3. a streetlight schedule with periods seconds apart is installed on every
   station (contactor 1: on at +10 s for 20 s, again at +45 s for 15 s;
   contactor 2: on at +20 s for 30 s), and the lights switch on the simulators;
4. at +35 s an over-current trip on SUBS003's MV indicator: the fault shows up;
   at +55 s the central resets the indicators and it clears;
5. a table refreshes every second: link, boot, lights and modes per contactor,
   open faults, last seen — all read back from the central's operator API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from hil.rig import Rig

SITE_ZONE = ZoneInfo("Europe/Amsterdam")


def _absolute(at: datetime) -> dict[str, str]:
    return {"kind": "Absolute", "time": at.astimezone(SITE_ZONE).strftime("%H:%M:%S")}


def demo_profile(contactor: int, start: datetime, periods: list[tuple[int, int]]) -> dict[str, Any]:
    """A SetStreetlightProfile payload: on/off `periods` (seconds from `start`)."""
    local = start.astimezone(SITE_ZONE)
    # §7.10.1: a schedule day runs from 12:00 to 11:59:59; validFrom names that day.
    day = local.date() if local.hour >= 12 else local.date() - timedelta(days=1)
    return {
        "contactorId": contactor,
        "clearAllSchedules": True,
        "streetlightProfiles": [
            {
                "profileId": 100 + contactor,
                "stackLevel": 1,
                "recurrencyKind": "Daily",
                "validFrom": f"{day.isoformat()}T00:00:00",
                "daySchedule": [
                    {
                        "start": _absolute(start + timedelta(seconds=on)),
                        "end": _absolute(start + timedelta(seconds=off)),
                    }
                    for on, off in periods
                ],
            }
        ],
    }


# What the view shows of a station's meters, in this order, when it has them.
SHOWN = (
    ("Voltage.L1N", None, "U1"),  # the transformer's DLMS meter
    ("ActivePower.Sum", None, "P"),
    ("Power.Active.Import", "P1Meter", "P(P1)"),  # the streetlight supply's P1 port
)


def meter_cell(samples: list[dict[str, Any]]) -> str:
    """The latest value of each shown measurand, e.g. "U1 230.1 V  P(P1) 0.41 kW"."""
    latest: dict[tuple[str, str | None], dict[str, Any]] = {}
    for sample in samples:  # oldest first: the last one wins
        location = sample.get("location")
        latest[sample["measurand"], None if location in (None, "", "-") else location] = sample
    cells = []
    for measurand, location, label in SHOWN:
        found = latest.get((measurand, location))
        if found is not None:
            cells.append(f"{label} {found['value']} {found.get('unit') or ''}".rstrip())
    return "  ".join(cells) or "-"


def render(
    stations: list[dict[str, Any]],
    started: datetime,
    events: list[str],
    meters: dict[str, str] | None = None,
) -> str:
    elapsed = (datetime.now(SITE_ZONE) - started).total_seconds()
    lines = [f"OS³P HIL demo — {elapsed:5.0f} s — Ctrl-C stops everything", ""]
    header = (
        f"{'STATION':<9} {'LINK':<9} {'BOOT':<9} {'CONTACTOR 1':<22} {'CONTACTOR 2':<22} FAULTS"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for s in stations:
        cells = []
        for contactor in ("1", "2"):
            light = s.get("lights", {}).get(contactor, {}).get("status", "-")
            mode = s.get("modes", {}).get(contactor, {}).get("mode", "")
            cells.append(f"{light:<4} {mode}")
        faults = ", ".join(
            f"{f['errorCode']}" + (f" ({f['info']})" if f.get("info") else "")
            for f in s.get("openFaults", [])
        )
        link = "online" if s.get("connected") else "offline"
        boot = s.get("bootStatus") or "-"
        row = f"{s['id']:<9} {link:<9} {boot:<9} {cells[0]:<22} {cells[1]:<22}"
        lines.append(f"{row} {faults or 'none'}")
        if meters is not None:
            lines.append(f"{'':<9} meters: {meters.get(s['id'], '-')}")
    lines += ["", "events:"] + [f"  {e}" for e in events[-8:]]
    return "\n".join(lines)


async def last_meters(rig: Rig) -> dict[str, str]:
    """Each station's latest meter values, as the central stored them (last 30 s)."""
    since = (datetime.now(UTC) - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    cells = {}
    for station in rig.stations:
        body = await rig.api(
            "GET", f"/api/stations/{station.station_id}/meter-values?from={quote(since)}"
        )
        cells[station.station_id] = meter_cell(body["meterValues"])
    return cells


async def run_demo(workdir: Path, stations: int, duration: float | None) -> int:
    rig = Rig(workdir, stations, heartbeat=10, meters=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    events: list[str] = []
    interactive = sys.stdout.isatty()
    try:
        print(f"starting the rig in {workdir} …", flush=True)
        await rig.start()
        await rig.until_all_accepted(timeout=60)
        started = datetime.now(SITE_ZONE)

        def note(text: str) -> None:
            events.append(f"{datetime.now(SITE_ZONE):%H:%M:%S} {text}")

        note(f"all {stations} stations Accepted; meters read every 5 s; installing the schedule")
        for station in rig.stations:
            await rig.command(
                station.station_id,
                "ChangeConfiguration",
                {"key": "MeterValueSampleInterval", "value": "5"},
            )
        for station in rig.stations:
            for contactor, periods in ((1, [(10, 30), (45, 60)]), (2, [(20, 50)])):
                answer = await rig.command(
                    station.station_id,
                    "SetStreetlightProfile",
                    demo_profile(contactor, started, periods),
                )
                status = answer["response"]["status"]
                note(
                    f"{station.station_id} contactor {contactor}: SetStreetlightProfile → {status}"
                )
        tripped = reset = False
        while not stop.is_set():
            elapsed = (datetime.now(SITE_ZONE) - started).total_seconds()
            last = rig.stations[-1]
            if elapsed >= 35 and not tripped:
                tripped = True
                await rig.io_command(last, "trip MV1 overcurrent")
                await rig.io_command(last, "clear MV1 overcurrent")
                note(f"{last.station_id}: over-current passes MV1 (the indicator latches)")
            if elapsed >= 55 and not reset:
                reset = True
                answer = await rig.command(last.station_id, "ResetMVFaultIndicator", {})
                status = answer["response"]["status"]
                note(f"{last.station_id}: ResetMVFaultIndicator → {status}")
            view = render(await rig.station_views(), started, events, await last_meters(rig))
            print(("\033[2J\033[H" if interactive else "\n") + view, flush=True)
            if duration is not None and elapsed >= duration:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
        return 0
    finally:
        print("stopping …", flush=True)
        await rig.stop()
        print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the rig's files here (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.workdir is not None:
        sys.exit(asyncio.run(run_demo(args.workdir, args.stations, args.duration)))
    with tempfile.TemporaryDirectory(prefix="os3p-demo-") as tmp:
        sys.exit(asyncio.run(run_demo(Path(tmp), args.stations, args.duration)))


if __name__ == "__main__":
    main()
