"""Settings: environment, TOML file, precedence, and refusal of unsafe values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from renown.settings import CONFIG_ENV, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("RENOWN_"):
            monkeypatch.delenv(key)


def test_defaults_are_usable_without_configuration() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///renown.db"
    assert s.kafka_bootstrap is None and s.topic == "renown.events"
    assert s.seeds == []


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENOWN_SEEDS", "mod.near, alice.near,mod.near")
    monkeypatch.setenv("RENOWN_KAFKA_BOOTSTRAP", "k1:9092, k2:9093")
    monkeypatch.setenv("RENOWN_BATCH_SIZE", "250")
    s = load_settings()
    assert s.seeds == ["mod.near", "alice.near"]
    assert s.kafka_bootstrap == "k1:9092,k2:9093"
    assert s.batch_size == 250


def test_toml_file_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "renown.toml"
    config.write_text('topic = "from.file"\nbatch_size = 77\nseeds = ["a.near"]\n')
    monkeypatch.setenv("RENOWN_BATCH_SIZE", "88")  # the environment beats the file
    s = load_settings(config, database_url="postgresql://u@h/db")  # arguments beat both
    assert (s.topic, s.batch_size, s.seeds) == ("from.file", 88, ["a.near"])
    assert s.database_url == "postgresql://u@h/db"
    monkeypatch.delenv(CONFIG_ENV)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_key_in_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "renown.toml"
    config.write_text("tpoic = 'typo'\n")
    with pytest.raises(SettingsError, match="tpoic"):
        load_settings(config)
    monkeypatch.delenv(CONFIG_ENV)


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("RENOWN_DATABASE_URL", "mysql://x@y/z", "only sqlite"),
        ("RENOWN_DATABASE_URL", "::::", "not a database URL"),
        ("RENOWN_KAFKA_BOOTSTRAP", "localhost", "not host:port"),
        ("RENOWN_KAFKA_BOOTSTRAP", "h:99999", "not host:port"),
        ("RENOWN_SEEDS", "Mod.Near", "not NEAR account ids"),
        ("RENOWN_BATCH_SIZE", "0", "batch_size"),
        ("RENOWN_TELEPORT", "1.5", "teleport"),
        ("RENOWN_DECAY_HALF_LIFE_DAYS", "-1", "decay_half_life_days"),
        ("RENOWN_TOPIC", "bad topic!", "valid Kafka topic"),
    ],
)
def test_unsafe_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=needle) as info:
        load_settings()
    assert env in str(info.value) or needle in str(info.value)


def test_contradictions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENOWN_DEAD_LETTER_TOPIC", "renown.events")
    with pytest.raises(SettingsError, match="dead_letter_topic must differ"):
        load_settings()
    monkeypatch.delenv("RENOWN_DEAD_LETTER_TOPIC")
    monkeypatch.setenv("RENOWN_SESSION_TIMEOUT_MS", "3000")
    monkeypatch.setenv("RENOWN_HEARTBEAT_INTERVAL_MS", "2000")
    with pytest.raises(SettingsError, match="heartbeat_interval_ms"):
        load_settings()


def test_redacted_hides_the_password() -> None:
    s = load_settings(database_url="postgresql://user:secret@db/renown")
    assert "secret" not in str(s.redacted())


def test_kind_weights_merge_with_defaults_and_refuse_unknown_kinds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RENOWN_KIND_WEIGHTS", '{"endorse": 3.5, "attest": 0}')
    s = load_settings()
    assert s.kind_weights["endorse"] == 3.5 and s.kind_weights["attest"] == 0
    assert s.kind_weights["vote_account"] == 1.0  # untouched kinds keep their default
    monkeypatch.setenv("RENOWN_KIND_WEIGHTS", '{"likes": 1}')
    with pytest.raises(SettingsError, match="unknown evidence kinds"):
        load_settings()
    monkeypatch.setenv("RENOWN_KIND_WEIGHTS", '{"endorse": -1}')
    with pytest.raises(SettingsError, match=r"\[0, 100\]"):
        load_settings()


@pytest.mark.parametrize(
    ("uri", "needle"),
    [("https://h/snapshots/é/{epoch}", "ASCII"), ("https://h/latest.jsonl", "{epoch}")],
)
def test_snapshot_uri_template_is_ascii_with_an_epoch(uri: str, needle: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(needle)):
        load_settings(snapshot_uri_template=uri)
    assert load_settings(snapshot_uri_template="https://h/{epoch}.jsonl").snapshot_uri_template
