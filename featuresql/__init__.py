"""featuresql: a warehouse-pushdown, dbt-style feature framework.

Importing the package is cheap: the compiler, adapters and drivers load on use.

    >>> from featuresql import Context
    >>> with Context("path/to/project") as context:
    ...     context.run()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from featuresql.context import Context


def __getattr__(name: str) -> Any:
    if name == "Context":
        from featuresql.context import Context

        return Context
    raise AttributeError(f"module 'featuresql' has no attribute {name!r}")


__all__ = ["Context", "__version__"]
