"""``featuresql docs generate``: read the project (and its warehouse, if built), write the site."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featuresql.docs.catalog import build_catalog
from featuresql.docs.site import DOCS_FOLDER, write_site
from featuresql.docs.warehouse import WarehouseInfo, open_context, read_warehouse
from featuresql.errors import FeaturesqlError


@dataclass(frozen=True)
class GeneratedDocs:
    """What ``generate_docs`` wrote, and what it could not read."""

    index: Path
    catalog: Path
    models: int
    features: int
    sources: int
    warehouse_read: bool
    warehouse_note: str
    notes: tuple[str, ...]


def generate_docs(
    project_dir: Path | str = ".", target: str | None = None, variables: dict[str, Any] | None = None
) -> GeneratedDocs:
    """Build the catalog of the project on ``target`` and write ``<target_path>/docs/``.

    The warehouse is read when it exists (see ``featuresql.docs.warehouse``); the
    docs are written either way.
    """
    context, reason = open_context(project_dir, target, variables or {})
    with context:
        warehouse = WarehouseInfo(note=reason)
        if not reason:
            try:
                warehouse = read_warehouse(context, list(context.compiled.models.values()))
            except FeaturesqlError as exc:  # a table the target refuses to read: document what is known
                warehouse = WarehouseInfo(note=f"warehouse not read: {exc.one_line()}")
        catalog = build_catalog(context, warehouse, target=target)
    index, catalog_path = write_site(context.project.target_dir / DOCS_FOLDER, catalog)
    models = [*catalog["models"].values(), *catalog["on_demand"].values()]
    return GeneratedDocs(
        index=index,
        catalog=catalog_path,
        models=len(models),
        features=sum(1 for m in models for c in m["columns"] if c["role"] == "feature"),
        sources=len(catalog["sources"]),
        warehouse_read=warehouse.read,
        warehouse_note=warehouse.note,
        notes=tuple(catalog["metadata"]["notes"]),
    )
