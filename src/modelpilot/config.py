"""Settings from flags and the environment, and the one translation of their validation errors.

Every process of modelpilot reads a `pydantic_settings.BaseSettings` (the operator, the model
server, the router, the drift job), from flags, the environment, or both. A bad value must end as
one line naming the setting the way the user wrote it: the environment variable
(`MODELPILOT_ROUTER_PORT: ...`) or the flag and its variable (`--port (MODELPILOT_ROUTER_PORT)`),
never a pydantic traceback. `load` builds the settings and raises `errors.InputError` with that
line; `describe` is the translation alone, for callers that build the settings themselves.

Renamed variables: a field whose `validation_alias` is `AliasChoices(current, former, ...)` is read
under its current name first, then under the former ones (the operator's `MODELPILOT_EXPERIMENT_*`
settings, for one). `load` logs one warning per former name still set, naming its replacement,
and `describe` names the variable the user actually set.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import pydantic
import pydantic_settings

from modelpilot import errors

SettingsT = TypeVar("SettingsT", bound=pydantic_settings.BaseSettings)
_LOG = logging.getLogger(__name__)


def variables(cls: type[pydantic_settings.BaseSettings], field: str) -> list[str]:
    """The environment variables of `field`: the current one first, then any former ones."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, pydantic.AliasChoices):
        return [str(choice) for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [f"{cls.model_config.get('env_prefix', '')}{field.upper()}"]


def table(cls: type[pydantic_settings.BaseSettings]) -> str:
    """The settings of `cls` as a Markdown table (variable, default, description; former names
    after the current one), for the docs: a test keeps the docs equal to it."""
    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, info in cls.model_fields.items():
        current, *former = variables(cls, name)
        names = f"`{current}`" + "".join(f" (formerly `{old}`)" for old in former)
        default = info.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        rows.append(f"| {names} | {shown} | {info.description or ''} |")
    return "\n".join(rows)


def _field_of(cls: type[pydantic_settings.BaseSettings], loc: str) -> str:
    """The field an error location names: its own name, or one of its variables."""
    if loc in cls.model_fields:
        return loc
    for name in cls.model_fields:
        if loc.upper() in (v.upper() for v in variables(cls, name)):
            return name
    return loc


def deprecated(
    cls: type[pydantic_settings.BaseSettings], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One sentence per former variable name set in `environ` (default: the process's)."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    out = []
    for name in cls.model_fields:
        current, *former = variables(cls, name)
        for old in former:
            if old.upper() in env:
                ignored = " (ignored: both are set)" if current.upper() in env else ""
                out.append(f"{old} is deprecated{ignored}: set {current} instead")
    return out


def describe(
    exc: pydantic.ValidationError,
    *,
    cls: type[pydantic_settings.BaseSettings],
    flags: bool | Collection[str],
    environ: Mapping[str, str] | None = None,
) -> str:
    """`VARIABLE: message`, or `--field (VARIABLE): message` for a field set through a flag
    (`flags`: True for every field, or the fields given as flags); VARIABLE is the one set in
    `environ` (default: the process's) when the field has more than one."""
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    field = _field_of(cls, loc)
    names = variables(cls, field) if field in cls.model_fields else [loc]
    env = {k.upper() for k in (os.environ if environ is None else environ)}
    variable = next((n for n in names if n.upper() in env), names[0])
    flagged = flags if isinstance(flags, bool) else field in flags
    name = f"--{field.replace('_', '-')} ({variable})" if flagged else variable
    # pydantic prefixes the message of a validator's ValueError; the user wrote no validator.
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}"


def load(
    cls: type[SettingsT], values: Mapping[str, Any] | None = None, *, flags: bool = False
) -> SettingsT:
    """`cls(**values)` (None values left to the environment and the defaults); a bad value raises
    `errors.InputError` naming the setting (see `describe`); former variable names still set are
    logged as warnings (see `deprecated`)."""
    for sentence in deprecated(cls):
        _LOG.warning("%s", sentence)
    given = {k: v for k, v in (values or {}).items() if v is not None}
    try:
        return cls(**given)
    except pydantic.ValidationError as exc:
        # Only a value that came in through a flag is named as one; the rest came from the
        # environment (a `--metrics-source` flag that does not exist would mislead).
        raise errors.InputError(
            describe(exc, cls=cls, flags=set(given) if flags else False)
        ) from exc
