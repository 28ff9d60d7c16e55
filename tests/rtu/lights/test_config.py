"""The `[lights]` section."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rtu.config import ConfigInvalid, Problems, TableReader
from rtu.lights.config import LightsConfig, read_lights_config

FILE = Path("/etc/rtu/rtu.toml")


def read(text: str) -> LightsConfig:
    problems = Problems(FILE)
    table = tomllib.loads(text).get("lights", {})
    config = read_lights_config(TableReader(table, "lights", problems, FILE.parent))
    problems.raise_if_any()
    return config


def test_defaults_and_values() -> None:
    assert read("") == LightsConfig(feedback_timeout=2.0, max_stack_level=10, max_sleep=30.0)
    assert read("[lights]\nfeedback_timeout = 5\nmax_stack_level = 3\n") == LightsConfig(
        feedback_timeout=5.0, max_stack_level=3
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[lights]\nfeedback_timeout = 0\n", "lights.feedback_timeout"),
        ("[lights]\nmax_stack_level = -1\n", "lights.max_stack_level"),
        ("[lights]\nmax_stack = 1\n", "lights.max_stack"),
    ],
)
def test_mistakes_name_their_key(text: str, key: str) -> None:
    with pytest.raises(ConfigInvalid) as info:
        read(text)
    assert [e.key for e in info.value.errors] == [key]
