"""The daemon's persistent state (settings overrides, boot record, clock, run state)."""

from rtu.state.store import MIGRATIONS, BootRecord, ClockOffset, PreviousRun, StateStore

__all__ = ["MIGRATIONS", "BootRecord", "ClockOffset", "PreviousRun", "StateStore"]
