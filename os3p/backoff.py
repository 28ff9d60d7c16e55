"""Reconnect delays: capped exponential backoff with full jitter.

Full jitter (delay drawn uniformly from [0, min(cap, base·2^attempt)]) spreads
thousands of substations that lost the central at the same moment over the
whole window instead of letting them return in synchronised waves.
Randomness is injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delay before the next attempt; `reset()` after a success."""

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 300.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self._base = base
        self._cap = cap
        self._uniform = uniform
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return self._uniform(0.0, ceiling)

    def reset(self) -> None:
        self._attempt = 0
