"""Every backend, importable as ``featuresql.adapters``: warehouse adapters and online stores.

Two registries of the same shape, each an explicit mapping from a type name to
``module:Class``, imported only when a target of that type is used (drivers are
imported inside the adapter): warehouses by a profile's ``type``
(``featuresql.sql.engines``, which also holds each engine's SQL facts) and
online stores by the ``store:`` of an ``online:`` block (``featuresql.adapters.store``).
Third-party backends register under the entry-point groups ``featuresql.adapters``
and ``featuresql.online_stores``.

May import: the base modules (``errors``), ``featuresql.sql`` and ``featuresql.serving`` (the
item format the stores write).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from featuresql.errors import ConfigError, closest
from featuresql.sql.engines import ENGINES

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter

BUILTIN_ADAPTERS = {name: engine.adapter for name, engine in ENGINES.items()}


def registered(builtins: Mapping[str, str], group: str) -> dict[str, str]:
    """Every class of a registry by type name: the built-in ones, then an entry-point group's."""
    from importlib.metadata import entry_points  # only past the built-in ones: it is slow to import

    plugins = {ep.name: ep.value for ep in entry_points(group=group) if ep.name not in builtins}
    return {**builtins, **plugins}


def load_class(type_name: str, builtins: Mapping[str, str], group: str, what: str) -> Any:
    """The class registered for ``type_name`` (built in, or a third party's), imported now."""
    target = builtins.get(type_name)
    if target is None:
        plugins = registered(builtins, group)
        target = plugins.get(type_name)
        if target is None:
            known = sorted(plugins)
            raise ConfigError(f"unknown {what} {type_name!r}{closest(type_name, known)}; available: {', '.join(known)}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def adapter_class(type_name: str) -> type[WarehouseAdapter]:
    """The adapter class for a profile ``type``, imported lazily."""
    cls: type[WarehouseAdapter] = load_class(type_name, BUILTIN_ADAPTERS, "featuresql.adapters", "target type")
    return cls
