"""Each modality and graph name is declared once, in ``training/modalities.py``; everything else reads the registry.

Checked over ``features/ training/ tasks/ flows/`` (``tests.source_scan``): no collection literal lists two or
more of the names, and the names that are not also ordinary column words (every graph name, ``clip_text``)
appear as a string literal nowhere else. ``text``, ``image`` and ``summary`` stay usable as column names.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tasks.stages import stage_names
from tests.source_scan import REPO, Hit, collections_of, literals_of
from training.modalities import graph_names, modality_names

REGISTRY = "training/modalities.py"
COLUMN_WORDS = {"text", "image", "summary"}  # also column / field names (items.text, item_summaries.summary)
STAGE_REGISTRY = "tasks/stages.py"


def _names() -> set[str]:
    return {*modality_names(), *graph_names()}


def _outside(hits: list[Hit]) -> list[str]:
    return [str(h) for h in hits if h.path != REGISTRY]


def test_no_list_of_modality_or_graph_names_outside_the_registry() -> None:
    assert _outside(collections_of(_names())) == []


def test_graph_names_and_clip_text_are_string_literals_only_in_the_registry() -> None:
    assert _outside(literals_of(_names() - COLUMN_WORDS)) == []


def _declared_names() -> list[str]:
    """Names the registry declares: spec names (first argument) and ``knn_graph=`` (its graph's name)."""
    module = ast.parse((REPO / REGISTRY).read_text())
    out: list[str] = []
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("ModalitySpec", "GraphSpec"):
            values = [*node.args[:1], *(k.value for k in node.keywords if k.arg in ("name", "knn_graph"))]
            out += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return out


def test_the_registry_declares_each_name_once() -> None:
    declared = _declared_names()
    assert sorted(declared) == sorted(_names())


def _declared_stages() -> list[str]:
    """Stage names the stage registry declares (the first argument of each ``StageSpec(...)``)."""
    module = ast.parse((REPO / STAGE_REGISTRY).read_text())
    calls = [n for n in ast.walk(module) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "StageSpec"]
    return [c.args[0].value for c in calls if c.args and isinstance(c.args[0], ast.Constant)]


def test_the_stage_registry_declares_each_stage_once() -> None:
    assert sorted(_declared_stages()) == sorted(stage_names())


def test_no_list_of_stage_names_outside_the_stage_registry() -> None:
    # Settings sections keyed by stage ({"embed": {...}}) are configuration, not a list of the stages.
    hits = collections_of(set(stage_names()), dicts=False)
    assert [str(h) for h in hits if h.path != STAGE_REGISTRY] == []


def test_the_scan_finds_what_it_forbids(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(
        'KNOWN = ("image", "text")\nCHOICES = {"a": "co_mention", "b": "x"}\nONE = ["text"]\n'
        'def f(m):\n    """image_knn and text_knn in prose are fine."""\n    return m == "clip_text"\n'
    )
    collections = collections_of({"image", "text", "co_mention", "clip_text"}, roots=("pkg",), base=tmp_path)
    assert [(h.line, h.names) for h in collections] == [(1, ("image", "text"))]
    literals = literals_of({"co_mention", "clip_text", "image_knn"}, roots=("pkg",), base=tmp_path)
    assert [(h.line, h.names) for h in literals] == [(2, ("co_mention",)), (6, ("clip_text",))]
