"""Warehouse adapters, importable as ``featuresql.adapters``.

The registry is an explicit mapping from a profile's ``type`` to ``module:Class``;
the module (and its driver) is imported only when a target of that type is used.
Third-party adapters register under the entry-point group ``featuresql.adapters``.

May import: the base modules (``errors``), ``featuresql.sql`` and ``featuresql.serving`` (the
item format the stores write).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from featuresql.errors import ConfigError, closest

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter

BUILTIN_ADAPTERS = {
    "duckdb": "featuresql.adapters.duckdb:DuckDBAdapter",
    "snowflake": "featuresql.adapters.snowflake:SnowflakeAdapter",
    "bigquery": "featuresql.adapters.bigquery:BigQueryAdapter",
}


def adapter_class(type_name: str) -> type[WarehouseAdapter]:
    """The adapter class for a profile ``type``, imported lazily."""
    target = BUILTIN_ADAPTERS.get(type_name)
    if target is None:
        from importlib.metadata import entry_points  # only for third-party adapters: it is slow to import

        plugins = {ep.name: ep.value for ep in entry_points(group="featuresql.adapters")}
        target = plugins.get(type_name)
        if target is None:
            known = sorted({*BUILTIN_ADAPTERS, *plugins})
            raise ConfigError(
                f"unknown target type {type_name!r}{closest(type_name, known)}; available: {', '.join(known)}"
            )
    module_name, _, class_name = target.partition(":")
    cls: type[WarehouseAdapter] = getattr(importlib.import_module(module_name), class_name)
    return cls
