"""Settings are read from the environment once, with defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.settings import Settings, SettingsError


def test_defaults_point_at_home_and_loopback_servers() -> None:
    settings = Settings.from_env({"HOME": "/home/someone"})
    assert settings.model_profile == "local"
    assert settings.embeddings_urls == ("http://127.0.0.1:8001",)
    assert settings.reasoning_urls == ("http://127.0.0.1:8002",)
    assert settings.models_dir == settings.home / "models"
    assert settings.dagster_home == settings.home / "dagster"
    assert settings.api_key is None


def test_a_list_of_urls_becomes_replicas() -> None:
    settings = Settings.from_env({"LLAMACPP_EMBEDDINGS_URL": "http://a:1/, http://b:2"})
    assert settings.embeddings_urls == ("http://a:1", "http://b:2")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("LLAMACPP_EMBEDDINGS_URL", "127.0.0.1:8001", "expected http(s)://host:port"),
        ("ATHENA_PG_PORT", "five", "ATHENA_PG_PORT='five' is not a whole number"),
        ("ATHENA_ALLOW_HTTP", "perhaps", "ATHENA_ALLOW_HTTP='perhaps' is not a boolean"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({name: value})


def test_the_api_key_stays_out_of_repr() -> None:
    settings = Settings.from_env({"LLAMACPP_API_KEY": "sekrit-value", "ATHENA_HOME": "/srv/athena"})
    assert settings.api_key == "sekrit-value"
    assert "sekrit-value" not in repr(settings)
    assert settings.home == Path("/srv/athena")
