"""Definition changes: which models changed, which a run rebuilds, and the rebuild it asks for.

A model's definition hash covers what it reads (``state.definition_hashes``), so a
change upstream changes every model below it. A window model keeps its rows, so
once changed it must be rebuilt from ``start``, and only after every changed model
it reads: a run refuses it (naming ``featuresql run --full-refresh --select A+``,
which rebuilds the topmost changed models and everything below them, in order),
or rebuilds it (``on_change='rebuild'``, or ``--full-refresh``) when the run
also builds every changed model upstream of it. Any model whose changed upstream
models the run does not build is refused: it would be built from stale rows and
recorded as current. All of it is pure: state in, a decision out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from featuresql.compile.models import CompiledModel
from featuresql.errors import ConfigError
from featuresql.project.graph import Graph
from featuresql.run.state import ModelState


def changed_models(
    models: Mapping[str, CompiledModel],
    definitions: Mapping[str, str],
    states: Mapping[str, ModelState],
    recorded: Mapping[str, str],
    unrecorded: Collection[str] = (),
) -> set[str]:
    """The models of ``definitions`` whose table was built from another definition than their current one.

    ``states``: the window models' state; ``recorded``: the snapshot models' recorded
    definitions; ``unrecorded``: snapshot models with a table but no recorded definition
    (built by an older version), which count as changed since nothing says otherwise.
    """
    changed = set()
    for name, definition in definitions.items():
        if models[name].window is not None:
            stored = states[name].definitions if name in states else frozenset()
            if stored and stored != {definition}:
                changed.add(name)
        elif recorded.get(name, definition) != definition or name in unrecorded:
            changed.add(name)
    return changed


def check_changes(
    graph: Graph, models: Mapping[str, CompiledModel], selected: Sequence[str], changed: set[str], full_refresh: bool
) -> set[str]:
    """The changed window models this run rebuilds from ``start`` (``on_change='rebuild'``).

    Raises a ConfigError for the first selected model the run would build wrong: a
    changed window model it may not rebuild, or any model reading a changed model the
    run does not build. The message names the rebuild that fixes every such model.
    """
    chosen = set(selected)
    rebuild: set[str] = set()
    refused: list[str] = []
    for name in selected:
        model = models[name]
        if graph.ancestors(name) & changed - chosen:
            refused.append(name)
        elif name in changed and model.window is not None and not full_refresh:
            if model.settings.on_change == "rebuild":
                rebuild.add(name)
            else:
                refused.append(name)
    if refused:
        raise _refusal(graph, models, refused, chosen, changed)
    return rebuild


def rebuild_roots(graph: Graph, refused: Collection[str], changed: set[str]) -> list[str]:
    """The topmost changed models whose ``name+`` selections rebuild ``refused`` and all they read.

    A root is a changed model with no changed ancestor. Its descendants may read other
    changed models too, whose roots are added until ``root+ ...`` holds every changed
    ancestor of every model it selects.
    """
    roots: set[str] = set()
    pending, seen = set(refused), set()
    while pending:
        seen |= pending
        for name in pending:
            roots |= {c for c in changed & (graph.ancestors(name) | {name}) if not graph.ancestors(c) & changed}
        selection = roots.union(*(graph.descendants(root) for root in roots))
        pending = {name for name in selection if graph.ancestors(name) & changed - selection} - seen
    return sorted(roots)


def _refusal(
    graph: Graph, models: Mapping[str, CompiledModel], refused: list[str], chosen: set[str], changed: set[str]
) -> ConfigError:
    """One line: the first refused model, why, and the rebuild that fixes every refused model."""
    name = refused[0]
    upstream = changed & graph.ancestors(name)
    missing = rebuild_roots(graph, upstream - chosen, changed)
    if missing:
        reason = f"is built from {_names(missing)}, which changed and which this run does not rebuild"
    elif upstream:
        reason = f"changed since its table was computed (upstream {_names(rebuild_roots(graph, upstream, changed))})"
    else:
        reason = "changed since its table was computed"
    others = len(refused) - 1
    more = f" (and {others} more selected model{'s' if others > 1 else ''})" if others else ""
    roots = " ".join(f"{root}+" for root in rebuild_roots(graph, refused, changed))
    fix = f"rebuild with `featuresql run --full-refresh --select {roots}`"
    if not missing:
        fix += ", or set config(on_change='rebuild') on the changed window models to rebuild them automatically"
    return ConfigError(f"model {name!r} {reason}{more}: {fix}", path=models[name].path)


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
