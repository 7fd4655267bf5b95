"""The shape of the tree, counted: layers import only downwards, Prefect only in ``task.py`` files under
``tasks/``, no function over 60 lines."""

from __future__ import annotations

import ast

import pytest

from tests.source_scan import python_files

LAYERS = {"features": 0, "training": 1, "tasks": 2, "flows": 3}
MAX_FUNCTION_LINES = 60


def _imports(module: ast.Module) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def test_imports_only_point_down() -> None:
    upward = [
        f"{path}:{line} imports {name}"
        for path, module in python_files()
        for line, name in _imports(module)
        if name.split(".")[0] in LAYERS and LAYERS[name.split(".")[0]] > LAYERS[path.split("/")[0]]
    ]
    assert upward == []


def test_prefect_is_imported_in_tasks_only_by_task_modules() -> None:
    found = [
        f"{path}:{line}"
        for path, module in python_files(("tasks",))
        for line, name in _imports(module)
        if name.split(".")[0] == "prefect" and not path.endswith("/task.py") and path != "tasks/task.py"
    ]
    assert found == []


@pytest.mark.parametrize("roots", [("features", "training", "tasks", "flows"), ("bench",)])
def test_no_function_is_longer_than_60_lines(roots: tuple[str, ...]) -> None:
    long = [
        f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, module in python_files(roots)
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_tree_is_ruff_clean_and_formatted() -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    root = Path(__file__).resolve().parents[1]
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([ruff, *args], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
