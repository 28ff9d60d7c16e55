"""The streetlight handlers on a running station (simulator, real driver, real stores)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from os3p.messages import (
    ClearSingleStreetlightProfileRequest,
    GetEffectiveStreetlightDayScheduleRequest,
    OverrideAction,
    OverrideStreetlightRequest,
    ResumeStreetlightRequest,
    SetStreetlightProfileRequest,
    StreetlightMode,
    StreetlightStatus,
    from_payload,
    to_payload,
)
from rtu.lights.handlers import LightsHandlers
from tests.hil.support import UNIT, async_test
from tests.rtu.lights.support import Station, at, daily_wire, soon, station, until

STATUS = "StreetlightStatusNotification"
MODE = "StreetlightModeStatusNotification"
MAX_STACK = 5


def handlers(st: Station) -> LightsHandlers:
    return LightsHandlers(
        controller=st.controller, store=st.store, clock=st.clock, max_stack_level=lambda: MAX_STACK
    )


async def override(h: LightsHandlers, action: str, contactor: int | None = None) -> Any:
    request = OverrideStreetlightRequest(contactor_id=contactor, action=OverrideAction(action))
    return await h.override(request, None)


def set_request(contactor: int, *profiles: dict[str, Any], clear: bool | None = None) -> Any:
    payload: dict[str, Any] = {"contactorId": contactor, "streetlightProfiles": list(profiles)}
    if clear is not None:
        payload["clearAllSchedules"] = clear
    return from_payload(SetStreetlightProfileRequest, payload)


def evening(st: Station, profile_id: int, stack_level: int) -> dict[str, Any]:
    return daily_wire(profile_id, stack_level, soon(st.clock, 3600), soon(st.clock, 7200))


def broken(change: Callable[[dict[str, Any]], None], st: Station) -> dict[str, Any]:
    profile = evening(st, 9, 1)
    change(profile)
    return profile


REJECTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "stack-above-max": lambda p: p.update(stackLevel=MAX_STACK + 1),
    "malformed-time": lambda p: p["daySchedule"][0]["start"].update(time="25:00:00"),
    "time-missing": lambda p: p["daySchedule"][0]["start"].pop("time"),
    "offset-missing": lambda p: p["daySchedule"][0].update(start={"kind": "Sunset"}),
    "valid-to-before-from": lambda p: p.update(
        validFrom="2026-06-02T00:00:00", validTo="2026-06-01T00:00:00"
    ),
    "weekly-without-valid-from": lambda p: p.update(recurrencyKind="Weekly"),
    "duplicate-profile-id": lambda p: p.update(profileId=2),  # as the other new one
    "duplicate-stack-level": lambda p: p.update(stackLevel=2),
}


@pytest.mark.parametrize("change", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_set_profile_rejects_and_installs_nothing(
    tmp_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    @async_test
    async def scenario() -> None:
        async with station(tmp_path) as st:
            h = handlers(st)
            assert (await h.set_profile(set_request(1, evening(st, 1, 0)), None)).status == (
                "Accepted"
            )
            # With clearAllSchedules too: the erase is undone with the failed install.
            for clear in (None, True):
                answer = await h.set_profile(
                    set_request(1, evening(st, 2, 2), broken(change, st), clear=clear), None
                )
                assert answer.status == "Rejected"
                assert [p.profile_id for p in st.controller.profiles(1)] == [1]

    scenario()


@async_test
async def test_set_clear_and_effective_schedule(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        h = handlers(st)
        start, end = soon(st.clock, 3600), soon(st.clock, 7200)
        profile = daily_wire(1, 0, start, end)
        assert (await h.set_profile(set_request(2, profile), None)).status == "Accepted"
        request = from_payload(
            GetEffectiveStreetlightDayScheduleRequest,
            {"contactorId": 2, "at": start.strftime("%Y-%m-%dT23:59:00")},
        )
        answer = to_payload(await h.effective_day_schedule(request, None))
        assert answer == {
            "contactorId": 2,
            "daySchedule": [{"start": at(start)[:8], "end": at(end)[:8]}],
        }
        # clearAllSchedules replaces the contactor's set in one step.
        other = daily_wire(7, 3, start, end)
        assert (await h.set_profile(set_request(2, other, clear=True), None)).status == "Accepted"
        assert [p.profile_id for p in st.controller.profiles(2)] == [7]
        # Errata S16: criteria ANDed; nothing matched is Unknown.
        clear = ClearSingleStreetlightProfileRequest
        unknown = await h.clear_profile(clear(profile_id=7, stack_level=0), None)
        assert unknown.status == "Unknown"
        done = await h.clear_profile(clear(profile_id=7, contactor_id=2, stack_level=3), None)
        assert done.status == "Accepted"
        assert st.controller.profiles(2) == ()
        assert (await h.clear_profile(clear(), None)).status == "Unknown"


@async_test
async def test_override_suspend_and_resume(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        h = handlers(st)
        await until(lambda: st.controller.core.available)
        answer = await override(h, "On", 1)
        assert answer.status == "Accepted"
        (mode,) = await st.wait_events(MODE, 1)
        assert (mode["contactorId"], mode["mode"]) == (1, "RemoteOverride")
        (status,) = await st.wait_events(STATUS, 1)
        assert (status["contactorId"], status["status"]) == (1, "On")
        # Suspend for all: every contactor keeps its state; the schedule (off) is ignored.
        answer = await override(h, "Suspend")
        assert answer.status == "Accepted"
        modes = await st.wait_events(MODE, 5)
        assert [(m["contactorId"], m["mode"]) for m in modes[1:]] == [
            (c, "RemoteOverride") for c in (1, 2, 3, 4)
        ]
        await asyncio.sleep(4 * UNIT)
        assert st.writes(1) == [True]
        assert await st.store.overrides() == {1: True, 2: False, 3: False, 4: False}
        # Resume contactor 1: the schedule (no profile: off) takes it back.
        answer = await h.resume(ResumeStreetlightRequest(contactor_id=1), None)
        assert answer.status == "Accepted"
        modes = await st.wait_events(MODE, 6)
        assert (modes[5]["contactorId"], modes[5]["mode"]) == (1, "Schedule")
        statuses = await st.wait_events(STATUS, 2)
        assert (statuses[1]["status"], "unexpected" in statuses[1]) == ("Off", False)
        assert st.writes(1) == [True, False]
        assert st.controller.mode(2) is StreetlightMode.REMOTE_OVERRIDE
        # Off for contactor 2 while it is already off: nothing to write.
        await override(h, "Off", 2)
        await asyncio.sleep(4 * UNIT)
        assert st.writes(2) == []


@async_test
async def test_local_switch_rejects_override_and_resume(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        h = handlers(st)
        st.sim.set_local_switch(True)
        await until(lambda: st.controller.local_switch is True)
        for action in ("On", "Off", "Suspend"):
            answer = await override(h, action)
            assert answer.status == "RejectedLocalOverride"
        answer = await h.resume(ResumeStreetlightRequest(contactor_id=3), None)
        assert answer.status == "RejectedLocalOverride"
        assert await st.store.overrides() == {}


@async_test
async def test_trigger_providers_describe_the_present(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        h = handlers(st)
        await until(lambda: st.controller.core.available)
        await override(h, "On", 3)
        await st.wait_events(STATUS, 1)
        (status,) = await h.status_messages(3)
        assert (status.contactor_id, status.status) == (3, StreetlightStatus.ON)
        modes = await h.mode_messages(None)
        assert [(m.contactor_id, m.mode) for m in modes] == [
            (1, StreetlightMode.SCHEDULE),
            (2, StreetlightMode.SCHEDULE),
            (3, StreetlightMode.REMOTE_OVERRIDE),
            (4, StreetlightMode.SCHEDULE),
        ]
        assert len(await h.status_messages(None)) == 4


@async_test
async def test_an_unwired_contactor_cannot_be_overridden(tmp_path: Path) -> None:
    async with station(tmp_path, contactors=(1, 2)) as st:
        h = handlers(st)
        assert (await override(h, "On", 3)).status == "Rejected"
        assert (await h.resume(ResumeStreetlightRequest(contactor_id=4), None)).status == (
            "Rejected"
        )
        assert (await override(h, "Off")).status == "Accepted"
        assert await st.store.overrides() == {1: False, 2: False}
