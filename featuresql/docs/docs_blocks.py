"""dbt's docs blocks: ``{% docs name %}...{% enddocs %}`` in Markdown files, used as ``{{ doc('name') }}``.

Any ``.md`` file under the project's ``model_paths`` or ``macro_paths`` may hold
docs blocks; a description in YAML (``description: '{{ doc("user_spend") }}'``)
or in ``config(description=...)`` then takes the block's text, as in dbt. A block
named ``__overview__`` replaces the site's front page text. Block names are
unique in the project; a duplicate, an unclosed block or an unknown name is an
error naming the file and line.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from featuresql.errors import ConfigError, FeaturesqlError, closest
from featuresql.project.loader import Project

OVERVIEW = "__overview__"
_BLOCK = re.compile(r"\{%-?\s*docs\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}", re.DOTALL)
_OPENING = re.compile(r"\{%-?\s*docs\b")


@dataclass(frozen=True)
class DocBlock:
    name: str
    text: str  # Markdown, dedented and stripped
    path: Path
    line: int


def find_doc_blocks(project: Project) -> dict[str, DocBlock]:
    """Every docs block in the ``.md`` files under the model and macro paths, by name."""
    blocks: dict[str, DocBlock] = {}
    folders = dict.fromkeys(project.root / p for p in (*project.config.model_paths, *project.config.macro_paths))
    files = sorted({path for folder in folders if folder.is_dir() for path in folder.rglob("*.md")})
    for path in files:
        for block in parse_doc_blocks(path.read_text(encoding="utf-8"), path):
            other = blocks.setdefault(block.name, block)
            if other is not block:
                raise ConfigError(
                    f"docs block {block.name!r} is defined twice (also in {other.path.name}:{other.line}): rename one",
                    path=path,
                    line=block.line,
                )
    return blocks


def parse_doc_blocks(text: str, path: Path) -> list[DocBlock]:
    """The docs blocks of one Markdown file (text outside blocks is ignored, as dbt does)."""
    blocks = []
    end = 0
    for match in _BLOCK.finditer(text):
        _check_unclosed(text[end : match.start()], text, end, path)
        line = text.count("\n", 0, match.start()) + 1
        body = textwrap.dedent(match.group(2).strip("\n")).strip()
        blocks.append(DocBlock(match.group(1), body, path, line))
        end = match.end()
    _check_unclosed(text[end:], text, end, path)
    return blocks


def _check_unclosed(between: str, text: str, offset: int, path: Path) -> None:
    opening = _OPENING.search(between)
    if opening is not None:
        line = text.count("\n", 0, offset + opening.start()) + 1
        raise ConfigError(
            "docs block is not closed or not named: write {% docs name %}...{% enddocs %}", path=path, line=line
        )


class DocResolver:
    """Renders descriptions that call ``doc('name')``; plain text is returned as is."""

    def __init__(self, blocks: dict[str, DocBlock]):
        self.blocks = blocks
        self._env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)

    def resolve(self, text: str, where: str, path: Path | None = None, line: int | None = None) -> str:
        """``text`` with each ``{{ doc('name') }}`` replaced by the block's Markdown.

        ``where`` ("model user_transactions", "column amount of source bank.transactions")
        and ``path``/``line`` name the description in errors.
        """
        if "{{" not in text and "{%" not in text:
            return text
        try:
            return self._env.from_string(text).render(doc=self._doc).strip()
        except FeaturesqlError as exc:
            raise ConfigError(f"{where}: description: {exc.message}", path=path, line=line) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"{where}: description: {exc}; only {{{{ doc('name') }}}} may be used in descriptions",
                path=path,
                line=line,
            ) from None

    def overview(self) -> str | None:
        block = self.blocks.get(OVERVIEW)
        return block.text if block else None

    def _doc(self, name: str) -> str:
        block = self.blocks.get(name)
        if block is None:
            names = [n for n in self.blocks if n != OVERVIEW]
            raise ConfigError(
                f"doc({name!r}) names no docs block{closest(name, names)}: define it in a .md file under the "
                "model or macro paths as {% docs " + name + " %}...{% enddocs %}"
            )
        return block.text
