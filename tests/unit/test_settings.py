"""Settings: environment prefix, frozen, comma-separated keys, and `.env.example` kept complete."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from tickerwire.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_env_prefix_and_comma_separated_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKERWIRE_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    monkeypatch.setenv("TICKERWIRE_API_KEYS", "alpha, beta,,")
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:29092"
    assert [k.get_secret_value() for k in s.api_keys] == ["alpha", "beta"]
    assert "alpha" not in repr(s)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(pydantic.ValidationError):
        s.http_port = 1  # type: ignore[misc]


def test_env_example_documents_every_setting() -> None:
    text = (REPO / ".env.example").read_text("utf-8")
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if alias is not None else f"TICKERWIRE_{name.upper()}"  # type: ignore[union-attr]
        assert f"{env}=" in text, f"{env} is missing from .env.example"


def test_log_level_takes_any_case() -> None:
    assert Settings(log_level="INFO").log_level == "info"  # type: ignore[arg-type]


def test_an_invalid_setting_is_one_clear_line_and_exit_2() -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from tickerwire.cli import main; main()", "up"],
        env={**os.environ, "TICKERWIRE_LOG_LEVEL": "loud"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: TICKERWIRE_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error'"
    ]
