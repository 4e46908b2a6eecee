"""What the stages above ``run`` use of a project opened against one target.

``featuresql.Context`` is the one implementation; extract, online sync and the
stores take this protocol instead, so they depend on what they use (the project,
the target's name, its compiled models and its connection), not on the facade
that also runs hooks, plans and writes artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from featuresql.adapters.base import WarehouseAdapter
    from featuresql.compile.models import CompiledProject, Service
    from featuresql.project.loader import Project


class Workspace(Protocol):
    """A project on one target: compiled on first use, connected on first use."""

    project: Project
    target_name: str

    @property
    def adapter(self) -> WarehouseAdapter: ...

    @property
    def dialect(self) -> str: ...

    @property
    def compiled(self) -> CompiledProject: ...

    def compiled_for(self, models: Sequence[str]) -> CompiledProject:
        """Just ``models`` and their ancestors compiled (everything, if already compiled)."""
        ...

    def service(self, reference: str) -> Service:
        """Feature service ``NAME`` or ``NAME@VERSION``, resolved against its models."""
        ...

    def select(self, select: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
        """The selected models, in dependency order."""
        ...

    def connect_waiting(self, deadline: float) -> None:
        """Open the target, waiting until ``deadline`` (monotonic) while another process holds it."""
        ...
