"""The streetlight actions the central calls (§7.2, §7.4, §7.6, §7.7, §7.10) and the
TriggerMessage providers for the two Streetlight notifications (§6.7, §6.8, §7.12).

Handlers are bound methods registered on the daemon's router; they ignore the
router's context argument (everything they need was given to the constructor).
Each change is persisted in `lights.db` *before* the answer is Accepted, then
handed to the controller, whose loop switches and sends the notifications (so
the CALLRESULT goes out first and the notifications follow through the outbox).

Answers where the spec leaves room:

- SetStreetlightProfile: `Rejected` with the reason in the log (the response has
  no room for it) when any profile may not be installed (errata S19); nothing
  is installed then (§7.10.1 atomicity).
- ClearSingleStreetlightProfile: criteria ANDed, `Unknown` if nothing matched (S16).
- Override/Resume for a contactor that is not wired on the I/O module:
  `Rejected` (there is nothing to switch). For "all contactors" (no
  `contactorId`) the wired ones. `RejectedLocalOverride` while the station-wide
  switch is engaged, also for a Resume (Table 13).
- Suspend holds the state the feedback shows now; before the module was ever
  read, the state the schedule wants (what the lights are about to be).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from os3p.messages import (
    ClearProfileStatus,
    ClearSingleStreetlightProfileRequest,
    ClearSingleStreetlightProfileResponse,
    DaySchedulePeriod,
    GetEffectiveStreetlightDayScheduleRequest,
    GetEffectiveStreetlightDayScheduleResponse,
    MessageTrigger,
    OverrideAction,
    OverrideStatus,
    OverrideStreetlightRequest,
    OverrideStreetlightResponse,
    ResumeStreetlightRequest,
    ResumeStreetlightResponse,
    SetStreetlightProfileRequest,
    SetStreetlightProfileResponse,
    SetStreetlightProfileStatus,
    StreetlightModeStatusNotificationRequest,
    StreetlightStatusNotificationRequest,
    to_payload,
)
from os3p.router import Router
from rtu.clock import Clock
from rtu.lights.controller import LightsController, status_of
from rtu.lights.profiles import LightsStore
from rtu.schedule import InvalidProfile, day_schedule_wire, effective_periods, profile_from_wire
from rtu.triggers import Triggers

__all__ = ["LightsHandlers"]

log = logging.getLogger(__name__)

Ctx = TypeVar("Ctx")


class LightsHandlers:
    def __init__(
        self,
        *,
        controller: LightsController,
        store: LightsStore,
        clock: Clock,
        max_stack_level: Callable[[], int],  # StreetlightProfileMaxStackLevel now
    ) -> None:
        self._controller = controller
        self._store = store
        self._clock = clock
        self._max_stack_level = max_stack_level

    def register(self, router: Router[Ctx], triggers: Triggers) -> None:
        router.add(SetStreetlightProfileRequest, self.set_profile)
        router.add(ClearSingleStreetlightProfileRequest, self.clear_profile)
        router.add(GetEffectiveStreetlightDayScheduleRequest, self.effective_day_schedule)
        router.add(OverrideStreetlightRequest, self.override)
        router.add(ResumeStreetlightRequest, self.resume)
        triggers.provide(MessageTrigger.STREETLIGHT_STATUS_NOTIFICATION, self.status_messages)
        triggers.provide(MessageTrigger.STREETLIGHT_MODE_STATUS_NOTIFICATION, self.mode_messages)

    # §7.10
    async def set_profile(
        self, request: SetStreetlightProfileRequest, _ctx: object
    ) -> SetStreetlightProfileResponse:
        contactor = request.contactor_id
        try:
            new = [profile_from_wire(to_payload(p)) for p in request.streetlight_profiles]
            await self._store.install(
                contactor,
                new,
                clear_all=bool(request.clear_all_schedules),
                max_stack_level=self._max_stack_level(),
            )
        except InvalidProfile as exc:
            log.warning("SetStreetlightProfile for contactor %d rejected: %s", contactor, exc)
            return SetStreetlightProfileResponse(status=SetStreetlightProfileStatus.REJECTED)
        log.info(
            "contactor %d: installed profiles %s%s",
            contactor,
            [p.profile_id for p in new],
            " (all others cleared)" if request.clear_all_schedules else "",
        )
        self._controller.set_profiles(await self._store.profiles())
        return SetStreetlightProfileResponse(status=SetStreetlightProfileStatus.ACCEPTED)

    # §7.2, errata S16
    async def clear_profile(
        self, request: ClearSingleStreetlightProfileRequest, _ctx: object
    ) -> ClearSingleStreetlightProfileResponse:
        cleared = await self._store.clear(
            profile_id=request.profile_id,
            contactor=request.contactor_id,
            stack_level=request.stack_level,
        )
        if not cleared:
            log.info("ClearSingleStreetlightProfile %s matched no profile", to_payload(request))
            return ClearSingleStreetlightProfileResponse(status=ClearProfileStatus.UNKNOWN)
        log.info("ClearSingleStreetlightProfile %s: %d cleared", to_payload(request), cleared)
        self._controller.set_profiles(await self._store.profiles())
        return ClearSingleStreetlightProfileResponse(status=ClearProfileStatus.ACCEPTED)

    # §7.4: "only the date part is used", as written (errata S20), local.
    async def effective_day_schedule(
        self, request: GetEffectiveStreetlightDayScheduleRequest, _ctx: object
    ) -> GetEffectiveStreetlightDayScheduleResponse:
        site = self._controller.site
        periods = effective_periods(
            self._controller.profiles(request.contactor_id), request.at.date(), site
        )
        return GetEffectiveStreetlightDayScheduleResponse(
            contactor_id=request.contactor_id,
            day_schedule=tuple(
                DaySchedulePeriod(start=p["start"], end=p["end"])
                for p in day_schedule_wire(periods, site)
            ),
        )

    # §7.6
    async def override(
        self, request: OverrideStreetlightRequest, _ctx: object
    ) -> OverrideStreetlightResponse:
        refused = self._refusal("OverrideStreetlight", request.contactor_id)
        if refused is not None:
            return OverrideStreetlightResponse(status=refused)
        targets = self._targets(request.contactor_id)
        held = {c: self._held(c, request.action) for c in targets}
        await self._store.set_overrides(str(request.action), held)
        log.info("OverrideStreetlight %s: holding %s", request.action, held)
        self._controller.override(held)
        return OverrideStreetlightResponse(status=OverrideStatus.ACCEPTED)

    # §7.7
    async def resume(
        self, request: ResumeStreetlightRequest, _ctx: object
    ) -> ResumeStreetlightResponse:
        refused = self._refusal("ResumeStreetlight", request.contactor_id)
        if refused is not None:
            return ResumeStreetlightResponse(status=refused)
        targets = self._targets(request.contactor_id)
        await self._store.remove_overrides(targets)
        log.info("ResumeStreetlight: contactors %s follow the schedule", list(targets))
        self._controller.resume(targets)
        return ResumeStreetlightResponse(status=OverrideStatus.ACCEPTED)

    def _refusal(self, action: str, contactor: int | None) -> OverrideStatus | None:
        if self._controller.local_switch:
            log.info("%s rejected: the local override switch is engaged", action)
            return OverrideStatus.REJECTED_LOCAL_OVERRIDE
        if contactor is not None and contactor not in self._controller.contactors:
            log.warning("%s rejected: contactor %d is not wired", action, contactor)
            return OverrideStatus.REJECTED
        return None

    def _targets(self, contactor: int | None) -> Sequence[int]:
        return self._controller.contactors if contactor is None else (contactor,)

    def _held(self, contactor: int, action: OverrideAction) -> bool:
        if action == OverrideAction.ON:
            return True
        if action == OverrideAction.OFF:
            return False
        lights = self._controller.lights(contactor)
        return self._controller.desired(contactor) if lights is None else lights

    # TriggerMessage providers (§7.12, errata S14: `connectorId` is the contactor)
    async def status_messages(
        self, contactor: int | None
    ) -> list[StreetlightStatusNotificationRequest]:
        now = self._clock.now()
        messages = []
        for c in self._controller.contactors if contactor is None else (contactor,):
            lights = self._controller.lights(c) if c in self._controller.contactors else None
            if lights is not None:  # never read (or not wired): nothing true to say
                messages.append(
                    StreetlightStatusNotificationRequest(
                        contactor_id=c, status=status_of(lights), timestamp=now
                    )
                )
        return messages

    async def mode_messages(
        self, contactor: int | None
    ) -> list[StreetlightModeStatusNotificationRequest]:
        now = self._clock.now()
        return [
            StreetlightModeStatusNotificationRequest(
                contactor_id=c, mode=self._controller.mode(c), timestamp=now
            )
            for c in (self._controller.contactors if contactor is None else (contactor,))
            if c in self._controller.contactors
        ]
