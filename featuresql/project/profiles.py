"""profiles.yml: named targets, secrets through env_var(), and the adapter for one of them.

Lookup order: ``<project>/profiles.yml``, then ``~/.featuresql/profiles.yml``;
with neither, the default target ``dev`` is a DuckDB file under ``target/``.
The file holds ``target:`` (the default target name) and ``targets:`` (name ->
settings with a ``type``). String values are rendered with Jinja so
``{{ env_var('X') }}`` and ``{{ env_var('X', 'default') }}`` work.

Secrets: a target's password, key passphrase, token and key JSON are pydantic
``SecretStr`` values (never printed, and removed from driver errors). Variables
named ``FEATURESQL_SECRET_*`` (as dbt's ``DBT_ENV_SECRET_*``) may be read in
profiles.yml only: ``env_var()`` in a model, macro, hook or test refuses them,
since what it renders is written to ``target/compiled/`` and sent to the warehouse.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import jinja2

from featuresql.adapters import adapter_class
from featuresql.adapters.base import WarehouseAdapter
from featuresql.adapters.store import DEFAULT_STORE, StoreConfig, store_class, store_types
from featuresql.errors import ConfigError, closest
from featuresql.names import check_identifier
from featuresql.project.config import validate
from featuresql.project.yamlfile import LineDict, line_of, load_yaml
from featuresql.sql.engines import DEFAULT_ENGINE, ENGINES

PROFILES_FILE = "profiles.yml"
SECRET_PREFIX = "FEATURESQL_SECRET_"

_missing: ContextVar[list[str] | None] = ContextVar("featuresql_missing_env", default=None)


def env_var(name: str, default: str | None = None) -> str:
    """``env_var()`` in models, macros, hooks and tests: any variable but a ``FEATURESQL_SECRET_*`` one."""
    if name.upper().startswith(SECRET_PREFIX):  # Windows reads environment names in any case
        raise ConfigError(
            f"env_var('{name}'): variables named {SECRET_PREFIX}* are secrets, readable only in profiles.yml "
            "(a model's SQL is written to target/compiled/ and sent to the warehouse): use it in a target there"
        )
    return profile_env_var(name, default)


def profile_env_var(name: str, default: str | None = None) -> str:
    """The value of an environment variable, or ``default``; an error if neither exists.

    While a target is resolved offline (``featuresql compile`` needs no secrets), a
    missing variable is recorded and renders as ``<NAME>`` instead.
    """
    value = os.environ.get(name, default)
    if value is None:
        missing = _missing.get()
        if missing is not None:
            missing.append(name)
            return f"<{name}>"
        raise ConfigError(missing_env_message(name))
    return value


def missing_env_message(name: str) -> str:
    return f"environment variable {name} is not set: export it, or give a default with env_var('{name}', 'value')"


def profiles_path(project_root: Path) -> Path | None:
    for candidate in (project_root / PROFILES_FILE, Path.home() / ".featuresql" / PROFILES_FILE):
        if candidate.is_file():
            return candidate
    return None


def resolve_target(
    project_root: Path, project_name: str, target: str | None, *, missing_env: list[str] | None = None
) -> tuple[str, Any]:
    """Return (target name, validated target config) for ``target`` or the default one.

    With a ``missing_env`` list, unset environment variables are appended to it
    (rendered as ``<NAME>``) instead of failing: enough to compile for the target.
    """
    token = _missing.set(missing_env)
    try:
        return _resolve_target(project_root, project_name, target)
    finally:
        _missing.reset(token)


def _resolve_target(project_root: Path, project_name: str, target: str | None) -> tuple[str, Any]:
    path = profiles_path(project_root)
    if path is None:
        if target not in (None, "dev"):
            raise ConfigError(f"target {target!r} not found: there is no {PROFILES_FILE} (only the default 'dev')")
        config = adapter_class(DEFAULT_ENGINE).config_model.model_validate(
            {"type": DEFAULT_ENGINE, "path": f"target/{project_name}.duckdb"}
        )
        return "dev", config
    data = load_yaml(path)
    if not isinstance(data, LineDict) or not isinstance(data.get("targets"), dict):
        raise ConfigError("expected 'targets:' mapping target names to settings", path=path)
    unknown = set(data) - {"target", "targets"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown key {key!r}; allowed keys: target, targets", path=path, line=data.lines[key])
    name = target or str(data.get("target") or "dev")
    targets = data["targets"]
    if not targets:
        raise ConfigError(
            "no targets under 'targets:': add one, e.g. dev: {type: duckdb, path: target/dev.duckdb}",
            path=path,
            line=data.lines.get("targets"),
        )
    if name not in targets:
        raise ConfigError(
            f"target {name!r} not found{closest(name, list(targets))}; defined: {', '.join(targets)}",
            path=path,
            line=None if target else data.lines.get("target"),  # the default target: the line that names it
        )
    settings = targets[name]
    if not isinstance(settings, dict) or "type" not in settings:
        raise ConfigError(
            f"target {name!r} needs a 'type' ({', '.join(ENGINES)})",
            path=path,
            line=line_of(data, ("targets", name)),
        )
    settings = _without_online(settings)
    rendered = _render(settings, path, line_of(data, ("targets", name)))
    try:
        config_model = adapter_class(str(settings["type"])).config_model
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path, line=line_of(data, ("targets", name, "type"))) from None
    if isinstance(settings, LineDict):
        rendered = _with_lines(rendered, settings)
    config = validate(config_model, rendered, path, loc_prefix=("targets", name))
    _check_target(name, config, rendered, path, data)
    return name, config


_UTC_NAMES = {"utc", "etc/utc", "gmt", "etc/gmt", "z", "+00:00"}


def _check_target(name: str, config: Any, rendered: Any, path: Path, data: Any) -> None:
    """What the target's model can't say: a schema name safe to quote, and no session time zone but UTC."""
    schema = getattr(config, "schema_", None)
    if isinstance(schema, str):  # quoted by sqlglot when rendered: "Raw Data" is a name
        key = "dataset" if "dataset" in rendered else "schema"
        check_identifier(schema, f"targets.{name}.{key}", path=path, line=line_of(data, ("targets", name, key)))
    for keys, value in _nested_items(rendered):
        if keys[-1].lower().replace("_", "") == "timezone" and str(value).strip().lower() not in _UTC_NAMES:
            raise ConfigError(
                f"targets.{name}.{'.'.join(keys)} is {value!r}: featuresql runs every session in UTC (tiles and "
                "times are UTC); remove the setting",
                path=path,
                line=line_of(data, ("targets", name, *keys)),
            )


def _nested_items(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) below a mapping, for settings passed through to a driver."""
    if not isinstance(value, dict):
        return [(prefix, value)] if prefix else []
    return [item for key, inner in value.items() for item in _nested_items(inner, (*prefix, str(key)))]


def resolve_online(project_root: Path, target: str, default: StoreConfig) -> StoreConfig:
    """The online store settings of ``target``: its ``online:`` block in profiles.yml, else ``default``.

    A target's block replaces the project's ``online:`` as a whole (so a
    ``dev`` target can use the local store and ``prod`` DynamoDB).
    """
    path = profiles_path(project_root)
    data = load_yaml(path) if path is not None else None
    settings = data.get("targets", {}).get(target) if isinstance(data, dict) else None
    if not isinstance(settings, dict) or "online" not in settings:
        return default
    assert path is not None
    line = line_of(data, ("targets", target, "online"))
    block = _render(settings["online"], path, line)
    return store_settings(block, path, loc_prefix=("targets", target, "online"), line=line)


def store_settings(block: Any, path: Path, *, loc_prefix: tuple[str, ...], line: int | None) -> StoreConfig:
    """An ``online:`` block, validated by its store's own settings model (``store:`` picks it).

    The store is a plug-in (``featuresql.adapters.store``): the block's keys are
    whatever that store's ``config_model`` takes; ``store`` defaults to local. A
    block without a value is refused like any other non-mapping.
    """
    kind = block.get("store", DEFAULT_STORE) if isinstance(block, dict) else DEFAULT_STORE
    try:
        cls = store_class(kind) if isinstance(kind, str) else None
    except ConfigError:
        cls = None
    if cls is None:
        *others, last = store_types()
        raise ConfigError(
            f"invalid value for {'.'.join(loc_prefix)!r}: 'store' must be {', '.join(others)} or {last}",
            path=path,
            line=line,
        )
    return validate(cls.config_model, block, path, loc_prefix=loc_prefix, line=line)


def _without_online(settings: dict[str, Any]) -> dict[str, Any]:
    """A target's warehouse settings: ``online`` is resolved on its own (``resolve_online``)."""
    if "online" not in settings:
        return settings
    rest = {key: value for key, value in settings.items() if key != "online"}
    return _with_lines(rest, settings) if isinstance(settings, LineDict) else rest


def open_adapter(project_root: Path, project_name: str, target: str | None) -> tuple[str, WarehouseAdapter]:
    name, config = resolve_target(project_root, project_name, target)
    return name, adapter_class(config.type)(config, project_root)


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
_ENV.globals["env_var"] = profile_env_var


def _render(value: Any, path: Path, line: int | None) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, path, line) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, path, line) for item in value]
    if isinstance(value, str) and "{{" in value:
        try:
            return _ENV.from_string(value).render()
        except ConfigError as exc:
            raise ConfigError(exc.message, path=path, line=line) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"cannot render {value!r}: {exc}", path=path, line=line) from None
    return value


def _with_lines(rendered: dict[str, Any], original: LineDict) -> LineDict:
    copy = LineDict(rendered)
    copy.lines, copy.line = original.lines, original.line
    return copy
