"""The one interface every online store implements, and the registry of stores.

As small as the warehouse side: make sure the table exists, write a batch of
changes (items to put, keys to delete), read a batch, scan, tear the table down.
Items are in DynamoDB's low-level form (``featuresql.serving.items`` builds
them), whatever the store.

A store is a plug-in shaped like a warehouse adapter: registered by type name
(the ``store:`` of an ``online:`` block; third parties under the entry-point group
``featuresql.online_stores``), with its own settings model (``config_model``) and
its own default table name (``table_name``). The core never asks which store it
has.

Every change is conditional on the sync version ``_v``, a sequence kept per
store (``featuresql.online.records``): an item replaces or deletes the stored one
only if the stored one was written by an earlier sync (or there is none). So
whatever order two syncs' writes reach the store in, the later sync's answer
stands; the feature timestamp may go back (a deleted event, a longer
``data_delay``), since the store holds the warehouse's current answer, not the
newest value ever seen. A change refused this way is counted as ``skipped``,
not an error.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from featuresql.adapters import load_class, registered
from pydantic import BaseModel, ConfigDict, Field

from featuresql.serving.tables import Item

BUILTIN_STORES = {
    "local": "featuresql.adapters.local_store:LocalStore",
    "dynamodb": "featuresql.adapters.dynamodb:DynamoDBStore",
}


DEFAULT_STORE = "local"
STORE_GROUP = "featuresql.online_stores"


class StoreConfig(BaseModel):
    """The settings every store takes; a store's ``config_model`` adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    store: str
    ttl_attribute: str = "_ttl"
    max_entities: int = Field(100, gt=0)  # per reader request


@dataclass(frozen=True)
class StorePlace:
    """Where a target's store belongs, for its default table name."""

    project_root: Path
    target_dir: Path  # the project's target folder
    project: str
    target: str


@dataclass(frozen=True)
class Deletion:
    """Delete the item under ``key`` unless a sync later than ``version`` wrote it."""

    key: str
    version: int


Change = Item | Deletion


@dataclass(frozen=True)
class WriteResult:
    written: int = 0
    deleted: int = 0
    skipped: int = 0  # a later sync had written the item already

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.written + other.written, self.deleted + other.deleted, self.skipped + other.skipped)


class OnlineStore(ABC):
    """One table of an online store."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[StoreConfig]]
    batch_size: ClassVar[int]  # changes per ``write_batch`` call

    def __init__(self, config: Any, table: str, project_root: Path):
        self.config = config
        self.table = table
        self.project_root = project_root

    @property
    def workers(self) -> int:
        """How many ``write_batch`` calls may run at once."""
        return 1

    @classmethod
    @abstractmethod
    def table_name(cls, config: Any, place: StorePlace) -> str:
        """The table a target's store uses: the configured one, else this store's default."""

    def refusal(self, item: Item) -> str | None:
        """Why the store cannot take ``item`` (its size...), or None: sync rejects such an item alone."""
        return None

    def missing(self) -> str | None:
        """Why the store cannot be read before a sync has created it (None: it can be read)."""
        return None

    @classmethod
    def reader_policy(cls, settings: dict[str, Any], *, push: bool = False) -> dict[str, Any] | None:
        """The IAM policy a Lambda reader (``push``: the push Lambda) of this store needs (None: a
        Lambda cannot use it)."""
        return None

    @abstractmethod
    def ensure_table(self) -> None:
        """Create the table (with its TTL attribute) if it does not exist; check it if it does."""

    @abstractmethod
    def write_batch(self, changes: Sequence[Change]) -> WriteResult:
        """Apply at most ``batch_size`` changes (distinct keys), each conditional on ``_v`` (module docstring)."""

    @abstractmethod
    def read_batch(self, keys: Sequence[str], attributes: Sequence[str]) -> dict[str, Item]:
        """Items by partition key, with ``attributes``; missing keys are absent."""

    @abstractmethod
    def scan(self, attributes: Sequence[str]) -> Iterator[Item]:
        """Every item in the table (the sync marker included), with ``pk`` and ``attributes``."""

    @abstractmethod
    def teardown(self) -> None:
        """Delete the table and everything in it."""

    @abstractmethod
    def reader_settings(self) -> dict[str, Any]:
        """What the reader needs to open this table (the manifest's ``store``), without secrets."""

    def identity(self) -> str:
        """Which physical table this is (type, table, region, endpoint or path), as a short stable digest.

        Sync records are kept per identity, so two targets sharing a warehouse never
        share one, and a store moved elsewhere starts afresh.
        """
        text = json.dumps(self.reader_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def store_class(type_name: str) -> type[OnlineStore]:
    """The store class for a ``store:`` type, imported lazily."""
    cls: type[OnlineStore] = load_class(type_name, BUILTIN_STORES, STORE_GROUP, "online store")
    return cls


def store_types() -> list[str]:
    """Every store type that can be configured: the built-in ones, then third parties'."""
    return list(registered(BUILTIN_STORES, STORE_GROUP))
