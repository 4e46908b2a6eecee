"""The CLI's own option types: greedy selector options and UTC times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class MultiValueOption(click.Option):
    """A repeatable option that also takes several space-separated values: ``-s a b+ tag:x``.

    dbt users write selectors this way; the option consumes following arguments
    until the next one that starts with '-'.
    """

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is not None:
                option.process = self._greedy(option.process)

    @staticmethod
    def _greedy(process: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def consume(value: Any, state: Any) -> None:
            process(value, state)
            while state.rargs and not state.rargs[0].startswith("-"):
                process(state.rargs.pop(0), state)

        return consume


project_options = [
    click.option("--target", "-t", default=None, help="Target in profiles.yml (default: its 'target')."),
]
selection_options = [
    click.option(
        "--select", "-s", multiple=True, cls=MultiValueOption, help="Models: name, name+, +name, tag:x (several)."
    ),
    click.option("--exclude", multiple=True, cls=MultiValueOption, help="Models to leave out (same syntax)."),
]


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorator


class UtcTime(click.DateTime):
    """A UTC time: a date or an ISO timestamp, optionally ending in Z or +00:00.

    Every time featuresql takes is UTC. A time with another offset is refused
    with the UTC time to write instead, rather than read as if it were UTC.
    """

    name = "utc time"

    def __init__(self) -> None:
        super().__init__(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])  # what --help shows; any ISO form is read

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a UTC date or time: write e.g. 2026-06-30 or 2026-06-30T05:00:00", param, ctx)
        if parsed.utcoffset():
            utc = parsed.astimezone(UTC).replace(tzinfo=None).isoformat()
            self.fail(f"{text!r} is not UTC: times are UTC, write {utc}", param, ctx)
        return parsed.replace(tzinfo=None)


TIMES = UtcTime()
