"""Every document and every numbered rule that code, SQL, tests and docs cite exists in the
repository, and `docs/contract.md` agrees with the code it names.

The check reads whatever is in the folders when it runs (not a list of known citations), so
code added later is held to it too: a `*.md` path must resolve to a file in the repository
(from its root or from the citing file's folder; a bare file name to a file of that name
anywhere in it), and "rule N" / "rules N to M, K" must name rules of `docs/architecture.md`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlet_bridge.certify.contract import ASSUMED_INLET, CONTRACT_DOC
from inlet_bridge.certify.report import REPORT_FILES

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("inlet_bridge", "tests", "docs")
TOP_LEVEL = ("README.md",)
TEXT = {".py", ".sql", ".md", ".yaml", ".yml", ".toml", ".txt", ".json", ".sh", ".html", ".cfg"}
ARCHITECTURE = ROOT / "docs" / "architecture.md"

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>)`]+", re.IGNORECASE)
_MD_PATH = re.compile(r"(?<![\w/.-])((?:\.{1,2}/|/)?(?:[\w.-]+/)*[\w-]+\.md)\b")
_RULES = re.compile(r"\brules?\s+(\d+(?:\s*(?:,|and|to|-|\u2013)\s*\d+)*)(?![\d.]*\.\d)")
_RULE_ITEM = re.compile(r"^(\d+)\. \*\*", re.MULTILINE)


def scanned_files() -> Iterator[Path]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT and "__pycache__" not in path.parts:
                yield path
    for name in TOP_LEVEL:
        yield ROOT / name


def md_citations(text: str) -> Iterator[str]:
    """The `*.md` paths a text cites; a link into this repository's tree (`.../blob/<ref>/...`)
    counts as its path, other web addresses are not files here."""
    for url in _URL.findall(text):
        _, blob, rest = url.partition("/blob/")
        if blob and rest.partition("#")[0].endswith(".md"):
            yield rest.partition("/")[2].partition("#")[0]
    yield from _MD_PATH.findall(_URL.sub(" ", text))


def rule_numbers(text: str) -> Iterator[tuple[str, int]]:
    """("rules 4 to 8, 11", 4), (..., 5), ...: every rule number a text cites."""
    for match in _RULES.finditer(text):
        parts = re.split(r"\s*(,|and|to|-|\u2013)\s*", match[1])
        numbers = [int(p) for p in parts[::2]]
        joins = parts[1::2]
        cited = {numbers[0]}
        for join, previous, number in zip(joins, numbers[:-1], numbers[1:], strict=True):
            cited |= set(range(previous, number + 1)) if join in ("to", "-", "\u2013") else {number}
        for number in sorted(cited):
            yield match[0], number


def _repository_names() -> set[str]:
    skip = {".git", ".venv", "node_modules", "__pycache__"}
    return {
        p.name
        for p in ROOT.rglob("*.md")
        if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
    }


def resolves(citation: str, cited_from: Path) -> bool:
    if Path(citation).name in REPORT_FILES:
        return True  # what `inlet-bridge certify` writes, not a file of the repository
    if "/" not in citation:
        return citation in _repository_names()
    if citation.startswith("/"):  # only as the repository's own path ("/docs/x" in a URL)
        target = (ROOT / citation.lstrip("/")).resolve()
        return target.is_relative_to(ROOT) and target.is_file()
    for base in (ROOT, cited_from.parent):
        target = (base / citation).resolve()
        if target.is_relative_to(ROOT) and target.is_file():
            return True
    return False


def architecture_rules() -> set[int]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## The rules, and where they live", 1)[1].split("\n## ", 1)[0]
    return {int(n) for n in _RULE_ITEM.findall(section)}


def test_every_cited_document_is_in_the_repository() -> None:
    missing = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for citation in md_citations(text):
            if not resolves(citation, path):
                missing.append(f"{path.relative_to(ROOT)}: {citation}")
    assert missing == []


def test_every_cited_rule_is_a_rule_of_the_architecture() -> None:
    rules = architecture_rules()
    assert rules == set(range(1, max(rules) + 1)), "rules are numbered 1, 2, ... without gaps"
    unknown = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for cited, number in rule_numbers(text):
            if number not in rules:
                unknown.append(f"{path.relative_to(ROOT)}: {cited!r} (rule {number})")
    assert unknown == []


# The checks themselves, on made-up text (built so that this file cites nothing that is missing).
def md(stem: str) -> str:
    return stem + ".md"


_ELSEWHERE = md("../elsewhere/GONE")


@pytest.mark.parametrize(
    ("text", "citations"),
    [
        pytest.param(f"see {md('docs/contract')}, section 2", [md("docs/contract")], id="path"),
        pytest.param(f"as in {_ELSEWHERE}", [_ELSEWHERE], id="outside"),
        pytest.param(f"{md('/work/x/NOTES')} rule", [md("/work/x/NOTES")], id="absolute"),
        pytest.param(
            f"https://git.example.com/x/blob/main/{md('docs/operations')}#alerts",
            [md("docs/operations")],
            id="repository-link",
        ),
        pytest.param(f"https://example.com/{md('guide')}", [], id="web-address"),
        pytest.param(f"the ({md('architecture')}) page", [md("architecture")], id="sibling"),
    ],
)
def test_md_citations_are_found(text: str, citations: list[str]) -> None:
    assert list(md_citations(text)) == citations


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        pytest.param("rule 6", [6], id="one"),
        pytest.param("(rules 1, 4, 11)", [1, 4, 11], id="list"),
        pytest.param("rules 5 to 9, 11", [5, 6, 7, 8, 9, 11], id="range"),
        pytest.param("rules 2 and 3", [2, 3], id="and"),
        pytest.param("the retry rule applies", [], id="no-number"),
        pytest.param("Inlet's guide 3.2, rule 3.2", [], id="a-section-number"),
    ],
)
def test_rule_numbers_are_found(text: str, numbers: list[int]) -> None:
    assert [n for _, n in rule_numbers(text)] == numbers


def test_a_missing_document_or_rule_would_be_found(tmp_path: Path) -> None:
    citing = tmp_path / "x.py"
    assert not resolves(_ELSEWHERE, ROOT / "inlet_bridge" / "x.py")
    assert not resolves(md("/work/shared/NOTES"), citing)
    assert not resolves(md("docs/nowhere"), citing)
    assert not resolves(md("NOWHERE"), citing)
    assert resolves(md("docs/architecture"), citing)
    assert resolves(md("operations"), ROOT / "docs" / md("certification"))
    assert 99 not in architecture_rules()


# -- docs/contract.md and the code it names ------------------------------------------------------

CONTRACT = ROOT / CONTRACT_DOC
_ASSUMED_ROW = re.compile(r"^\| (A\d+) \| (.+?) \| (.+?) \|$", re.MULTILINE)
_CODE = re.compile(r"`([^`]+)`")


def contract_section(number: int) -> str:
    text = CONTRACT.read_text(encoding="utf-8")
    return text.split(f"\n## {number}. ", 1)[1].split("\n## ", 1)[0]


def test_the_report_lists_the_assumed_inlet_items_of_the_contract() -> None:
    rows = _ASSUMED_ROW.findall(contract_section(2))
    assert [(number, fact) for number, fact, _ in rows] == list(ASSUMED_INLET)


def _defined_names() -> set[str]:
    words: set[str] = set()
    for path in (ROOT / "inlet_bridge").rglob("*.py"):
        words |= set(re.findall(r"\b[A-Za-z_]\w*\b", path.read_text(encoding="utf-8")))
    return words


def test_where_to_change_an_assumed_item_names_what_exists() -> None:
    """Each "change" cell names files, settings and code; all of them exist."""
    words = _defined_names()
    properties = (ROOT / "inlet_bridge" / "domain" / "config.py").read_text(encoding="utf-8")
    problems = []
    for number, _, change in _ASSUMED_ROW.findall(contract_section(2)):
        for named in _CODE.findall(change):
            if "/" in named:
                ok = (ROOT / named).is_file()
            elif named.startswith("["):  # a properties file setting: "[inlet] base_url"
                ok = re.search(rf"\b{re.escape(named.split()[-1])}\b", properties) is not None
            elif re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", named):  # code: `InletClient._call`
                ok = all(part in words for part in named.split("."))
            else:  # a command line or a keyword argument (`name=`): prose
                continue
            if not ok:
                problems.append(f"{number}: {named}")
    assert problems == []
