"""The one interface every online store implements, and the registry of stores.

As small as the warehouse side: make sure the table exists, write a batch of
items, read a batch, tear the table down. Items are in DynamoDB's low-level form
(``featuresql.serving.items`` builds them), whatever the store.

Every write is conditional: an item replaces the stored one only if its feature
timestamp ``_ts`` is newer, or equal with a greater sync version ``_v``. So a
value is never replaced by an older one, whatever order two syncs (or a sync and
an old backfill's sync) reach the store in; an item refused this way is counted
as ``skipped``, not an error.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from featuresql.serving.tables import Item

BUILTIN_STORES = {
    "local": "featuresql.adapters.local_store:LocalStore",
    "dynamodb": "featuresql.adapters.dynamodb:DynamoDBStore",
}


@dataclass(frozen=True)
class WriteResult:
    written: int = 0
    skipped: int = 0  # a value as new or newer was already stored

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.written + other.written, self.skipped + other.skipped)


class OnlineStore(ABC):
    """One table of an online store."""

    type_name: ClassVar[str]
    batch_size: ClassVar[int]  # items per ``write_batch`` call

    def __init__(self, config: Any, table: str, project_root: Path):
        self.config = config
        self.table = table
        self.project_root = project_root

    @property
    def workers(self) -> int:
        """How many ``write_batch`` calls may run at once."""
        return 1

    @abstractmethod
    def ensure_table(self) -> None:
        """Create the table (with its TTL attribute) if it does not exist; check it if it does."""

    @abstractmethod
    def write_batch(self, items: Sequence[Item]) -> WriteResult:
        """Write at most ``batch_size`` items, each conditional on being newer (see the module docstring)."""

    @abstractmethod
    def read_batch(self, keys: Sequence[str], attributes: Sequence[str]) -> dict[str, Item]:
        """Items by partition key, with ``attributes``; missing keys are absent."""

    @abstractmethod
    def teardown(self) -> None:
        """Delete the table and everything in it."""

    @abstractmethod
    def reader_settings(self) -> dict[str, Any]:
        """What the reader needs to open this table (the manifest's ``store``), without secrets."""


def store_class(type_name: str) -> type[OnlineStore]:
    module_name, _, class_name = BUILTIN_STORES[type_name].partition(":")
    cls: type[OnlineStore] = getattr(importlib.import_module(module_name), class_name)
    return cls
