"""Settings from flags and the environment, and the one translation of their validation errors.

Every process of modelpilot reads a `pydantic_settings.BaseSettings` (the operator, the model
server, the router, the drift job), from flags, the environment, or both. A bad value must end as
one line naming the setting the way the user wrote it: the environment variable
(`MODELPILOT_ROUTER_PORT: ...`) or the flag and its variable (`--port (MODELPILOT_ROUTER_PORT)`),
never a pydantic traceback. `load` builds the settings and raises `errors.InputError` with that
line; `describe` is the translation alone, for callers that build the settings themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
import pydantic_settings

from modelpilot import errors

SettingsT = TypeVar("SettingsT", bound=pydantic_settings.BaseSettings)


def describe(
    exc: pydantic.ValidationError, *, cls: type[pydantic_settings.BaseSettings], flags: bool
) -> str:
    """`PREFIX_FIELD: message`, or `--field (PREFIX_FIELD): message` when set through flags."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    # A field read under an alias (an environment variable of its own) is reported by that name.
    variable = (
        field if field.isupper() else f"{cls.model_config.get('env_prefix', '')}{field.upper()}"
    )
    name = f"--{field.replace('_', '-')} ({variable})" if flags else variable
    return f"{name}: {first['msg']}"


def load(
    cls: type[SettingsT], values: Mapping[str, Any] | None = None, *, flags: bool = False
) -> SettingsT:
    """`cls(**values)` (None values left to the environment and the defaults); a bad value raises
    `errors.InputError` naming the setting (see `describe`)."""
    try:
        return cls(**{k: v for k, v in (values or {}).items() if v is not None})
    except pydantic.ValidationError as exc:
        raise errors.InputError(describe(exc, cls=cls, flags=flags)) from exc
