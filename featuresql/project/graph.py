"""The model DAG: dependency order, cycles, and --select/--exclude selection.

Selectors, as in dbt: ``name``, ``name+`` (and its descendants), ``+name`` (and
its ancestors), ``+name+``, ``tag:x``; several selectors (space or comma
separated) are a union. ``--exclude`` removes what its selectors match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from featuresql.errors import CompileError, closest


class CycleError(CompileError):
    def __init__(self, models: list[str], path: Path | None = None, line: int | None = None):
        self.models = models
        message = f"models form a cycle: {' -> '.join(models)}; remove one of these ref() calls"
        super().__init__(message, path=path, line=line)


class Graph:
    def __init__(self, parents: Mapping[str, Iterable[str]], tags: Mapping[str, Iterable[str]] | None = None):
        self.parents = {name: tuple(dict.fromkeys(deps)) for name, deps in parents.items()}
        self.tags = {name: set(values) for name, values in (tags or {}).items()}
        self.children: dict[str, list[str]] = {name: [] for name in self.parents}
        for name, deps in self.parents.items():
            for dep in deps:
                self.children.setdefault(dep, []).append(name)

    def order(self) -> list[str]:
        """Every model after the models it refs; a cycle is an error naming its models."""
        ordered: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = [*path[path.index(name) :], name]
                raise CycleError(cycle)
            state[name] = "visiting"
            for dep in self.parents.get(name, ()):
                visit(dep, [*path, name])
            state[name] = "done"
            ordered.append(name)

        for name in sorted(self.parents):
            visit(name, [])
        return ordered

    def ancestors(self, name: str) -> set[str]:
        return self._walk(name, self.parents)

    def descendants(self, name: str) -> set[str]:
        return self._walk(name, self.children)

    def _walk(self, start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(edges.get(start, ()))
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(edges.get(name, ()))
        return seen

    def select(self, select: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[str]:
        """Selected models in dependency order (all of them when ``select`` is empty)."""
        chosen = set(self.parents)
        selectors = _split(select)
        if selectors:
            chosen = set().union(*(self._match(s) for s in selectors))
        for selector in _split(exclude):
            chosen -= self._match(selector)
        return [name for name in self.order() if name in chosen]

    def _match(self, selector: str) -> set[str]:
        upstream = selector.startswith("+")
        downstream = selector.endswith("+")
        core = selector.strip("+")
        if core.startswith("tag:"):
            tag = core[4:]
            names = {name for name, tags in self.tags.items() if tag in tags}
            if not names:
                known = sorted(set().union(*self.tags.values())) if self.tags else []
                raise CompileError(f"no model has tag {tag!r}{closest(tag, known)}")
        elif core in self.parents:
            names = {core}
        else:
            raise CompileError(f"no model named {core!r}{closest(core, list(self.parents))}")
        result = set(names)
        for name in names:
            if upstream:
                result |= self.ancestors(name)
            if downstream:
                result |= self.descendants(name)
        return result


def _split(selectors: Iterable[str]) -> list[str]:
    return [part for item in selectors for part in item.replace(",", " ").split() if part]
