"""The wheel holds the whole framework: built from the repository, installed on its own, it runs the example.

The suite itself runs against the editable install, which reads the source tree, so a
package or data file missing from pyproject.toml would pass every other test. Here
the wheel is built without build isolation (no network inside the test namespace),
installed with ``pip --target`` into a folder of its own, and that folder goes first
on ``PYTHONPATH`` for a copy of the example project outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from projects import SMALL_VARS_ARG, copy_example

ROOT = Path(__file__).resolve().parents[1]
WHERE_FROM = "featuresql.sql.windows"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "featuresql", "adapters"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("featuresql-*.whl")
    return built


def test_the_wheel_has_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        f"featuresql/{path.relative_to(ROOT / 'featuresql').as_posix()}"
        for path in (ROOT / "featuresql").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    adapters = {f"featuresql/adapters/{path.name}" for path in (ROOT / "adapters").glob("*.py")}
    assert sources | adapters <= names, sorted((sources | adapters) - names)
    assert {"featuresql/macros/windows.sql", "featuresql/py.typed", "featuresql/docs/assets/index.html"} <= names
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "featuresql = featuresql.cli.main:main" in scripts  # the console script


def test_the_installed_wheel_runs_the_example_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    project = copy_example(tmp_path / "elsewhere")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def featuresql(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-c",
            "from featuresql.cli.main import main; main()",
            "--vars",
            SMALL_VARS_ARG,
            *args,
        ]
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)

    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import featuresql.sql.windows as a, featuresql.adapters.duckdb as b; print(a.__file__, b.__file__)",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = [Path(path) for path in where.stdout.split()]
    assert len(loaded) == 2 and all(path.is_relative_to(site) for path in loaded), where.stdout  # not the sources
    for args in (("run",), ("sync", "--now", "2026-06-30"), ("test", "--now", "2026-06-30", "-s", "test_type:unit")):
        completed = featuresql(*args)
        assert completed.returncode == 0, completed.stderr + completed.stdout
    read = featuresql("read", "user_id=42", "-f", "user_transactions", "--now", "2026-06-30")
    assert read.returncode == 0, read.stderr
    assert '"user_transactions__count_7d"' in read.stdout
