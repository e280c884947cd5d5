"""The data-flow diagrams are drawn so that no line runs through a label: README's ASCII
diagram, and the SVG of the certification report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inlet_bridge.certify.report import _svg

ROOT = Path(__file__).resolve().parents[2]
VERTICAL = "│"
ARROW_DOWN, ARROW_UP = "▼", "▲"
CORNERS = "└┘┌┐├┤┬┴┼"


def ascii_diagram() -> list[str]:
    """README's diagram: the fenced code block that draws `POST /v1/events`."""
    blocks: list[list[str]] = []
    block: list[str] | None = None
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if block is None:
                block = []
            else:
                blocks.append(block)
                block = None
        elif block is not None:
            block.append(line)
    [diagram] = [b for b in blocks if any("POST /v1/events ──►" in line for line in b)]
    return diagram


def _at(lines: list[str], row: int, col: int) -> str:
    if 0 <= row < len(lines) and col < len(lines[row]):
        return lines[row][col]
    return " "


def crossings(lines: list[str]) -> list[str]:
    """Where a vertical line runs into text instead of ending in an arrow or a corner: a `│`
    may start under a label, but below it comes more line, an arrow or a corner; an arrow
    points at a label from a line; a corner joins lines."""
    found = []
    for row, line in enumerate(lines):
        for col, char in enumerate(line):
            below, above = _at(lines, row + 1, col), _at(lines, row - 1, col)
            if char == VERTICAL and below not in VERTICAL + ARROW_DOWN + CORNERS:
                found.append(f"line {row + 1}, column {col + 1}: │ runs into {below!r}")
            if char == ARROW_UP and below not in VERTICAL + CORNERS:
                found.append(f"line {row + 1}, column {col + 1}: ▲ comes from {below!r}")
            if char in "└┘" and above not in VERTICAL + ARROW_UP:
                found.append(f"line {row + 1}, column {col + 1}: {char} has no line above")
    return found


def test_no_line_of_the_readme_diagram_runs_through_a_label() -> None:
    assert crossings(ascii_diagram()) == []


@pytest.mark.parametrize(
    ("drawing", "problems"),
    [
        pytest.param(["call worker", "     │", " actual access"], 1, id="line-into-a-label"),
        pytest.param(["call worker", "     │", "  ───┘"], 0, id="line-into-a-corner"),
        pytest.param(["call worker", "     │", "     ▼", "     Inlet"], 0, id="arrow"),
        pytest.param(["  ▲ ", "  x "], 1, id="arrow-from-nowhere"),
    ],
)
def test_the_crossing_check_finds_lines_through_labels(drawing: list[str], problems: int) -> None:
    assert len(crossings(drawing)) == problems


def _cubic_lowest(path: str) -> float:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]
    (_, y0), (_, y1), (_, y2), (_, y3) = zip(numbers[::2], numbers[1::2], strict=True)
    points = [i / 200 for i in range(201)]
    return max(
        (1 - t) ** 3 * y0 + 3 * (1 - t) ** 2 * t * y1 + 3 * (1 - t) * t**2 * y2 + t**3 * y3
        for t in points
    )


def test_the_report_diagram_keeps_its_label_clear_of_the_lines() -> None:
    svg = _svg()
    [curve] = re.findall(r'<path d="(M [^"]+)"[^>]*stroke-dasharray', svg)
    [(y, size)] = re.findall(
        r'<text x="445" y="(\d+)" text-anchor="middle" font-size="(\d+)">', svg
    )
    label_top = int(y) - int(size)
    assert label_top > _cubic_lowest(curve) + 4, "the return line runs through its label"
    boxes = [
        int(y) + int(h)
        for y, h in re.findall(r'<rect x="\d+" y="(\d+)" width="\d+" height="(\d+)"', svg)
    ]
    assert label_top > max(boxes)
    height = int(re.findall(r'viewBox="0 0 \d+ (\d+)"', svg)[0])
    assert int(y) + 4 <= height, "the label is cut off at the bottom"
