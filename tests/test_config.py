"""One translation of settings errors: the line names the setting as the user can set it."""

from __future__ import annotations

import pydantic
import pydantic_settings
import pytest

from modelpilot import config, errors


class Example(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(env_prefix="MODELPILOT_EXAMPLE_")

    health_port: int = pydantic.Field(default=8080, ge=0, le=65535)


def test_a_bad_flag_names_the_flag_and_its_environment_variable() -> None:
    with pytest.raises(errors.InputError) as info:
        config.load(Example, {"health_port": 70000}, flags=True)
    assert str(info.value).startswith("--health-port (MODELPILOT_EXAMPLE_HEALTH_PORT): ")
    assert "65535" in str(info.value)


def test_a_bad_environment_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPILOT_EXAMPLE_HEALTH_PORT", "nope")
    with pytest.raises(errors.InputError) as info:
        config.load(Example)
    assert str(info.value).startswith("MODELPILOT_EXAMPLE_HEALTH_PORT: ")


def test_unset_values_fall_back_to_the_environment_and_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert config.load(Example, {"health_port": None}).health_port == 8080
    monkeypatch.setenv("MODELPILOT_EXAMPLE_HEALTH_PORT", "9")
    assert config.load(Example, {"health_port": None}).health_port == 9


class WithCheck(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(env_prefix="MODELPILOT_EXAMPLE_")

    health_port: int = pydantic.Field(default=8080, ge=0, le=65535)
    source: str = "router"

    @pydantic.field_validator("source")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != "router":
            raise ValueError(f"expected 'router', got {value!r}")
        return value


def test_a_bad_variable_beside_good_flags_is_named_by_its_variable_not_as_a_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPILOT_EXAMPLE_SOURCE", "statsd")
    with pytest.raises(errors.InputError) as info:
        config.load(WithCheck, {"health_port": 9, "source": None}, flags=True)
    # No `--source` flag exists; and pydantic's "Value error, " prefix is not the user's business.
    assert str(info.value) == "MODELPILOT_EXAMPLE_SOURCE: expected 'router', got 'statsd'"
