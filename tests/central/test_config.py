"""The TOML configuration: the documented example loads, and every error names its key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from central.config import ConfigError, load_config
from central.queueing import QueuePolicy
from central.webhooks import WebhookPolicy

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
[api]
token = "0123456789abcdef"
[storage]
url = "sqlite://central.db"
[files]
data_dir = "files"
"""


def test_the_documented_example_loads() -> None:
    path = ROOT / "config" / "central.example.toml"
    config = load_config(path)
    assert config.listen.port == 8180
    assert config.listen.prefix == "/OS3P"
    assert config.api.base_url == "http://127.0.0.1:8181"
    assert config.storage_url == f"sqlite://{path.parent / 'central.db'}"
    assert config.data_dir == path.parent / "files"
    assert config.command_timeout == 30.0
    # The example spells out the defaults: a key that drifted from them shows here.
    assert config.queue == QueuePolicy()
    assert config.webhooks == WebhookPolicy()


def test_queue_and_webhook_policies(tmp_path: Path) -> None:
    path = tmp_path / "central.toml"
    path.write_text(
        MINIMAL
        + "[commands]\nmax_in_flight = 4\nmax_attempts = 2\nretry_base = 0.5\nretry_cap = 30\n"
        + "[webhooks]\nmax_attempts = 3\nretry_base = 1\nretry_cap = 1\ntimeout = 2.5\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.queue == QueuePolicy(
        max_in_flight=4,
        max_attempts=2,
        backoff_base=timedelta(seconds=0.5),
        backoff_cap=timedelta(seconds=30),
    )
    assert config.webhooks == WebhookPolicy(
        max_attempts=3,
        backoff_base=timedelta(seconds=1),
        backoff_cap=timedelta(seconds=1),
        timeout=2.5,
    )
    assert load_config(_minimal(tmp_path)).queue == QueuePolicy()


def _minimal(tmp_path: Path) -> Path:
    path = tmp_path / "minimal.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[listen]\nport = "8180"\n', "listen.port"),
        ("[listen]\nprefx = '/OS3P'\n", "listen.prefx"),
        ("[listen]\nprefix = 'OS3P'\n", "listen.prefix"),
        ("[listen]\ntls_cert = 'c.pem'\n", "listen.tls_key"),
        ("[commands]\ntimeout = 0\n", "commands.timeout"),
        ("[commands]\nmax_in_flight = 0\n", "commands.max_in_flight"),
        ("[commands]\nmax_attempts = 1.5\n", "commands.max_attempts"),
        ("[commands]\nretry_base = 0\n", "commands.retry_base"),
        ("[commands]\nretry_base = 20\nretry_cap = 10\n", "commands.retry_cap"),
        ("[webhooks]\ntimeout = -1\n", "webhooks.timeout"),
        ("[webhooks]\nmax_attempts = 0\n", "webhooks.max_attempts"),
        ("[webhooks]\nretries = 3\n", "webhooks.retries"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
        ("[surprise]\n", "surprise"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, extra: str, key: str) -> None:
    path = tmp_path / "central.toml"
    path.write_text(MINIMAL + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL.replace('"0123456789abcdef"', '"short"'), "api.token"),
        (MINIMAL.replace('url = "sqlite://central.db"', ""), "storage.url"),
        (MINIMAL.replace('data_dir = "files"', ""), "files.data_dir"),
    ],
)
def test_required_values(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "central.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == key


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[api\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
