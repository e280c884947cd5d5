"""Print the map of files for docs/architecture.md: every module of the package with the question
its docstring answers. Run it after adding, moving or renaming a module and paste its output over
the table under "## Map of files" (tests/unit/test_architecture_map.py checks the two agree)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "inlet_bridge"


def modules(root: Path = ROOT) -> list[Path]:
    """Every module of the package, relative to the project root (`__init__.py` files left out)."""
    return sorted(
        path.relative_to(root)
        for path in (root / PACKAGE).rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )


def question(path: Path, root: Path = ROOT) -> str:
    """The module docstring's first sentence (its question), on one line."""
    doc = ast.get_docstring(ast.parse((root / path).read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    end = first.find("?")
    return first[: end + 1] if end >= 0 else first


def table() -> str:
    lines = ["| file | the question it answers |", "|---|---|"]
    lines += [f"| `{p.as_posix()}` | {question(p).replace('|', '/')} |" for p in modules()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
