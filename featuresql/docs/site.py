"""The site's files: ``index.html`` with every asset and the catalog inline, and ``catalog.json``.

Everything the page needs is inside ``index.html`` (no CDN, no fetch), so it works
offline and opened straight from disk (``file://``); ``catalog.json`` beside it is
the same document for other tools. Both are written whole or not at all.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from featuresql.files import atomic_path

ASSETS = Path(__file__).parent / "assets"
SCRIPTS = (
    "util.js",
    "markdown.js",
    "graph.js",
    "search.js",
    "model_views.js",
    "on_demand_views.js",
    "service_views.js",
    "views.js",
    "app.js",
)
STYLES = ("style.css",)
DOCS_FOLDER = "docs"  # under the project's target path
INDEX = "index.html"
CATALOG = "catalog.json"
_SLOT = re.compile(r"<!--featuresql:(\w+)-->")


def write_site(folder: Path, catalog: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``index.html`` and ``catalog.json`` into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    document = json.dumps(catalog, indent=1, default=str)
    index, catalog_path = folder / INDEX, folder / CATALOG
    with atomic_path(catalog_path) as partial:
        partial.write_text(document + "\n", encoding="utf-8")
    with atomic_path(index) as partial:
        partial.write_text(render_page(catalog), encoding="utf-8")
    return index, catalog_path


def render_page(catalog: dict[str, Any]) -> str:
    """The whole page: the template with styles, scripts and the catalog in its slots (one pass)."""
    parts = {
        "title": html.escape(f"{catalog['metadata']['project']} · featuresql docs"),
        "style": "\n".join(_asset(name) for name in STYLES),
        "script": "\n".join(_asset(name) for name in SCRIPTS),
        "catalog": embedded_json(catalog),
    }
    return _SLOT.sub(lambda match: parts[match.group(1)], _asset(INDEX))


def embedded_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` can end it or open a comment."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if name.endswith(".js") and "</script" in text.lower():
        raise AssertionError(f"asset {name} must not contain '</script'")  # it would end the inline script
    return text
