"""Scans the package sources with ``ast`` for names that must be declared in one place only.

Two kinds of finding (``Hit``):
- ``collection``: a tuple / list / set / dict literal (dict: keys and values) holding two or more of the names,
  i.e. a list of them written out;
- ``literal``: a string literal equal to one of the names (docstrings and other prose never equal a name).

Example:
    >>> hits = collections_of({"image_knn", "text_knn"}, roots=("tasks",))   # doctest: +SKIP
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "training", "tasks", "flows")


@dataclass(frozen=True)
class Hit:
    """One finding: where (path relative to the scanned base, line), what kind, and which names."""

    path: str
    line: int
    kind: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} {', '.join(self.names)}"


def python_files(roots: Sequence[str] = PACKAGES, *, base: Path = REPO) -> Iterator[tuple[str, ast.Module]]:
    """(path relative to ``base``, parsed module) of every ``.py`` file under ``roots``."""
    for root in roots:
        for path in sorted((base / root).rglob("*.py")):
            yield path.relative_to(base).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _strings(nodes: Sequence[ast.expr | None]) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _elements(node: ast.AST, dicts: bool = True) -> list[str] | None:
    """The string elements of a collection literal; None for any other node (and for dicts unless ``dicts``)."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return _strings(node.elts)
    if dicts and isinstance(node, ast.Dict):
        return _strings([*node.keys, *node.values])
    return None


def collections_of(
    names: Collection[str],
    *,
    roots: Sequence[str] = PACKAGES,
    base: Path = REPO,
    at_least: int = 2,
    dicts: bool = True,
) -> list[Hit]:
    """Collection literals holding ``at_least`` distinct ``names`` (dict literals too, unless ``dicts=False``)."""
    hits = []
    for path, module in python_files(roots, base=base):
        for node in ast.walk(module):
            elements = _elements(node, dicts)
            found = sorted({e for e in elements or () if e in names})
            if len(found) >= at_least:
                hits.append(Hit(path, getattr(node, "lineno", 0), "collection", tuple(found)))
    return hits


def literals_of(names: Collection[str], *, roots: Sequence[str] = PACKAGES, base: Path = REPO) -> list[Hit]:
    """String literals equal to one of ``names``."""
    hits = []
    for path, module in python_files(roots, base=base):
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                hits.append(Hit(path, node.lineno, "literal", (node.value,)))
    return hits
