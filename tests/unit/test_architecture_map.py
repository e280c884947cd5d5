"""docs/architecture.md's map of files matches the tree: every module of the package is listed
with the question its docstring answers, and nothing listed is gone."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\| `(?P<path>[^`]+)` \| (?P<question>.*) \|$", re.MULTILINE)


def file_map() -> ModuleType:
    spec = importlib.util.spec_from_file_location("file_map", ROOT / "scripts" / "file_map.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented() -> dict[str, str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Map of files", 1)[1].split("\n## ", 1)[0]
    return {m["path"]: m["question"] for m in _ROW.finditer(section)}


def test_every_module_is_on_the_map_and_nothing_else() -> None:
    tree = {p.as_posix() for p in file_map().modules()}
    listed = set(documented())
    assert sorted(tree - listed) == [], "modules missing from the map (run scripts/file_map.py)"
    assert sorted(listed - tree) == [], "the map lists files that are gone"


def test_the_map_says_what_each_docstring_asks() -> None:
    fm = file_map()
    for path, listed in documented().items():
        assert listed == fm.question(Path(path)).replace("|", "/"), path


def test_every_module_says_which_question_it_answers() -> None:
    fm = file_map()
    unasked = [p.as_posix() for p in fm.modules() if not fm.question(p).endswith("?")]
    # a few modules are lists of scenarios, named by what they show rather than a question
    assert all(p.startswith("inlet_bridge/certify/scenarios") for p in unasked), unasked
