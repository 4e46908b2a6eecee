"""What each entry point imports, in a fresh interpreter (click's tests/test_imports.py style).

`import featuresql` must stay cheap, `featuresql --help` must not load the SQL
stack, and compiling must not need a warehouse driver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = {
    "sqlglot",
    "duckdb",
    "pydantic",
    "jinja2",
    "yaml",
    "pyarrow",
    "pandas",
    "rich",
    "snowflake",
    "google",
}


def imported_after(code: str, cwd: Path | None = None) -> set[str]:
    """Top-level packages loaded by running ``code`` in a new interpreter."""
    report = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"{code}\n{report}"
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=True,
    )
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_import_featuresql_is_cheap():
    assert imported_after("import featuresql") & HEAVY == set()


def test_help_loads_only_click():
    code = (
        "from click.testing import CliRunner\n"
        "from featuresql.cli import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert imported_after(code) & HEAVY == set()


def test_adapter_registry_imports_drivers_lazily():
    assert "duckdb" not in imported_after("import featuresql.adapters")


def test_compile_needs_no_warehouse_driver(example_project):
    code = "from featuresql.context import Context\nContext('.').compiled"
    loaded = imported_after(code, cwd=example_project)
    assert "sqlglot" in loaded
    assert loaded & {"duckdb", "snowflake", "google", "pandas"} == set()


def test_the_serving_package_imports_only_the_standard_library():
    """The Lambda reader's shared item layout: no featuresql core, no SQL stack, no boto3 needed."""
    loaded = imported_after("import featuresql.serving.items")
    assert loaded & (HEAVY | {"boto3", "botocore", "click"}) == set()
    code = "import featuresql.serving.items, sys; print(sorted(m for m in sys.modules if m.startswith('featuresql')))"
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.strip() == "['featuresql', 'featuresql.serving', 'featuresql.serving.items']"
