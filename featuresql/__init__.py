"""featuresql: a warehouse-pushdown, dbt-style feature framework.

Importing the package is cheap: the CLI, compiler and adapters are loaded on use.
"""

from __future__ import annotations

__version__ = "0.1.0"
