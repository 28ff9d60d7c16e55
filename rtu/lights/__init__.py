"""Streetlights: profile store, controller and the OS³P streetlight actions (§6.7–§7.10)."""

from rtu.lights.config import LightsConfig, read_lights_config
from rtu.lights.controller import LightsController
from rtu.lights.handlers import LightsHandlers
from rtu.lights.profiles import LightsStore, ProfileStore
from rtu.lights.reconcile import Reconciler
from rtu.lights.subsystem import DATABASE_FILE, LightsSubsystem

__all__ = [
    "DATABASE_FILE",
    "LightsConfig",
    "LightsController",
    "LightsHandlers",
    "LightsStore",
    "LightsSubsystem",
    "ProfileStore",
    "Reconciler",
    "read_lights_config",
]
