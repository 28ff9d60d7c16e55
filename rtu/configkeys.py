"""The station's OS³P configuration keys (GetConfiguration / ChangeConfiguration).

One table says, per key, whether it is read-only, how a value is parsed and
rendered, and what it means (§5, implementation guide §6 Table 8, §7.1 Table 9).
Values accepted by ChangeConfiguration are persisted by the caller between
`prepare` and `apply`, and override the configuration file at the next start
(DESIGN.md "Runtime"); subsystems subscribe to the keys they apply live.

Answers (§7.1, §7.3; ChangeConfiguration has only Accepted/Rejected):
- unknown key in GetConfiguration → listed in `unknownKey`;
- unknown key, read-only key, or a value that does not parse → `Rejected`
  (with the reason in the log: the response has no room for it).

Pure: no I/O; read-only values that change daily (Sunrise, Sunset) come from
providers the daemon passes in.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "Change",
    "ConfigurationKeys",
    "InvalidValue",
    "KeySpec",
    "format_latlng",
    "parse_latlng",
    "standard_keys",
]


class InvalidValue(ValueError):
    """A value a key cannot take; the message says why (logged with the Rejected)."""


@dataclasses.dataclass(frozen=True)
class Change:
    """A ChangeConfiguration that passed every check: persist `rendered`, then `apply`."""

    name: str
    value: Any
    rendered: str


@dataclasses.dataclass(frozen=True)
class KeySpec:
    name: str
    readonly: bool
    parse: Callable[[str], Any]
    render: Callable[[Any], str]
    description: str


def _non_negative_int(text: str) -> int:
    if not re.fullmatch(r"[+]?\d+", text.strip()):
        if re.fullmatch(r"-\d+", text.strip()):
            raise InvalidValue("negative values are not allowed")
        raise InvalidValue(f"not an integer: {text!r}")
    return int(text)


_LATLNG = re.compile(r"^\s*\[\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*\]\s*$")


def parse_latlng(text: str) -> tuple[float, float]:
    """§8.2 latlng: "[<real number> , <real number>]", latitude first."""
    match = _LATLNG.match(text)
    if match is None:
        raise InvalidValue(f'not "[<latitude>, <longitude>]": {text!r}')
    lat, lng = float(match.group(1)), float(match.group(2))
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lng <= 180.0) or not math.isfinite(lat + lng):
        raise InvalidValue(f"out of range: latitude {lat}, longitude {lng}")
    return lat, lng


def format_latlng(value: tuple[float, float]) -> str:
    return f"[{value[0]:.6f}, {value[1]:.6f}]"


def _readonly(_: str) -> Any:
    raise InvalidValue("read-only")


def standard_keys() -> list[KeySpec]:
    """The keys this station implements. Sunrise/Sunset are rendered by their providers."""
    integer = str
    return [
        KeySpec("HeartbeatInterval", False, _non_negative_int, integer,
                "seconds between Heartbeat messages (at least one a day is sent anyway)"),
        KeySpec("websocketPingInterval", False, _non_negative_int, integer,
                "seconds between websocket pings; 0 disables ours (Guide §6 Table 8)"),
        KeySpec("Geolocation", False, parse_latlng, format_latlng,
                "latitude and longitude for the astronomical clock (§5)"),
        KeySpec("Sunrise", True, _readonly, str, "today's sunrise, local time (§5)"),
        KeySpec("Sunset", True, _readonly, str, "today's sunset, local time (§5)"),
        KeySpec("StreetlightProfileMaxStackLevel", False, _non_negative_int, integer,
                "highest stackLevel SetStreetlightProfile may use (§7.1 Table 9)"),
        KeySpec("MeterValueSampleInterval", False, _non_negative_int, integer,
                "seconds between Sample.Periodic MeterValues; 0 disables"),
        KeySpec("ClockAlignedDataInterval", False, _non_negative_int, integer,
                "seconds between Sample.Clock MeterValues, aligned (900: on the quarter)"),
    ]  # fmt: skip


class ConfigurationKeys:
    """Current values of the station's keys, with change listeners."""

    def __init__(
        self,
        specs: Iterable[KeySpec],
        values: Mapping[str, Any],
        *,
        providers: Mapping[str, Callable[[], str]] | None = None,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._values = dict(values)
        self._providers = dict(providers or {})
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        missing = [
            n for n, s in self._specs.items() if n not in self._values and n not in self._providers
        ]
        if missing:
            raise ValueError(f"no value or provider for keys {missing}")

    def value(self, name: str) -> Any:
        return self._values[name]

    def on_change(self, name: str, listener: Callable[[Any], None]) -> None:
        self._listeners.setdefault(name, []).append(listener)

    def get(self, names: Iterable[str] | None) -> tuple[list[tuple[str, bool, str]], list[str]]:
        """(key, readonly, value) for the known keys asked (all when None), and the unknown ones."""
        wanted = list(self._specs) if names is None else list(names)
        known: list[tuple[str, bool, str]] = []
        unknown: list[str] = []
        for name in wanted:
            spec = self._specs.get(name)
            if spec is None:
                unknown.append(name)
                continue
            provider = self._providers.get(name)
            text = provider() if provider is not None else spec.render(self._values[name])
            known.append((name, spec.readonly, text))
        return known, unknown

    def prepare(self, name: str, text: str) -> Change | str:
        """Check a ChangeConfiguration: a `Change` to persist and apply, or why it is Rejected.

        Split from `apply` because the caller persists in between: an Accepted answer
        must only go out once the value is committed (it survives a power cut).
        """
        spec = self._specs.get(name)
        if spec is None:
            return f"unknown key {name!r}"
        if spec.readonly:
            return f"{name} is read-only"
        try:
            value = spec.parse(text)
        except InvalidValue as exc:
            return f"{name}: {exc}"
        return Change(name, value, spec.render(value))

    def apply(self, change: Change) -> None:
        """Make a prepared change current and tell the subsystems that use the key."""
        self._values[change.name] = change.value
        for listener in self._listeners.get(change.name, []):
            listener(change.value)

    @staticmethod
    def parse_persisted(
        specs: Iterable[KeySpec], stored: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Values from the state database, parsed, and the entries that no longer parse
        (a key whose rules tightened in an update) with the reason, for the caller to log."""
        by_name = {s.name: s for s in specs}
        values: dict[str, Any] = {}
        rejected: dict[str, str] = {}
        for name, text in stored.items():
            spec = by_name.get(name)
            if spec is None or spec.readonly:
                rejected[name] = "not a writable key of this version"
                continue
            try:
                values[name] = spec.parse(text)
            except InvalidValue as exc:
                rejected[name] = str(exc)
        return values, rejected
