"""Rails that cannot drift: no module in app/ passes 400 lines, no class 300, and the import contracts in
pyproject.toml (layers, the SDKs each in its one module, the client apart from the server) hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


def modules() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_the_rails_see_the_whole_app() -> None:
    assert len(modules()) > 50  # the walk found the package, not an empty directory


def test_no_module_passes_400_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in modules()}
    over = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not over, f"split these modules (at most {MAX_MODULE_LINES} lines): {over}"


def class_lines(source: str) -> dict[tuple[int, str], int]:
    """Each class's (line, name) and its length, from its first decorator to its last line."""
    spans = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans[node.lineno, node.name] = (node.end_lineno or node.lineno) - first + 1
    return spans


def test_a_class_counts_from_its_decorators_to_its_last_line_nested_ones_too() -> None:
    source = "@dataclass\nclass A:\n    x: int\n\n    class B:\n        y: int\n\n\nz = 1\n"
    assert class_lines(source) == {(2, "A"): 6, (5, "B"): 2}


def test_no_class_passes_300_lines() -> None:
    over = {
        f"{path.relative_to(ROOT)}:{line} {name}": lines
        for path in modules()
        for (line, name), lines in class_lines(path.read_text()).items()
        if lines > MAX_CLASS_LINES
    }
    assert not over, f"split these classes (at most {MAX_CLASS_LINES} lines): {over}"


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " broken" in done.stdout and "0 broken" in done.stdout  # it ran the contracts, all kept
