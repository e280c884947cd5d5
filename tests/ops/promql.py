"""Which metrics does a PromQL expression read, and under which aggregation?

A small tokenizer, enough for the expressions of the alert rules and the dashboard: it drops
strings, label matchers, ranges and label lists, and tells metric names from functions,
aggregations and keywords. It refuses characters it does not know, so a typo cannot slip by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = LABEL_LIST_KEYWORDS | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}

_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
    | (?P<number>0x[0-9a-fA-F]+|\d[\w.]*|\.\d+)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<punct>=~|!~|!=|==|>=|<=|[(){}\[\],=<>+\-*/%^@])
    | (?P<space>\s+)
    | (?P<comment>\#[^\n]*)
    """,
    re.VERBOSE,
)


class PromQLSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class MetricUse:
    name: str
    # the functions and aggregations around it, innermost last
    enclosing: tuple[str, ...]


def tokens(expr: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLSyntaxError(f"unexpected {expr[pos]!r} at {pos} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            found.append((kind, match.group()))
        pos = match.end()
    return found


def _skip_group(toks: list[tuple[str, str]], i: int, opening: str, closing: str) -> int:
    """Index just past the group that opens at toks[i]."""
    if toks[i][1] != opening:
        raise PromQLSyntaxError(f"expected {opening!r}, found {toks[i][1]!r}")
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][1] == opening:
            depth += 1
        elif toks[j][1] == closing:
            depth -= 1
            if depth == 0:
                return j + 1
    raise PromQLSyntaxError(f"unclosed {opening!r}")


_SKIPPED = {"{": "}", "[": "]"}


def metric_uses(expr: str) -> list[MetricUse]:
    """Every metric name the expression selects, with the calls around it."""
    toks = tokens(expr)
    uses: list[MetricUse] = []
    stack: list[str] = []  # owner of each open parenthesis ("" for plain grouping)
    pending_owner = ""
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if text in _SKIPPED:  # label matchers and range selectors hold no metric
            i = _skip_group(toks, i, text, _SKIPPED[text])
            continue
        if text == "(":
            stack.append(pending_owner)
            pending_owner = ""
        elif text == ")":
            if not stack:
                raise PromQLSyntaxError(f"unbalanced ')' in {expr!r}")
            stack.pop()
        elif kind == "ident":
            if text in LABEL_LIST_KEYWORDS:
                if nxt == "(":
                    i = _skip_group(toks, i + 1, "(", ")")
                    continue
            elif text in KEYWORDS:
                pass
            elif nxt == "(" or (text in AGGREGATIONS and nxt in ("by", "without")):
                pending_owner = text
            else:
                uses.append(MetricUse(text, tuple(o for o in stack if o)))
        i += 1
    if stack:
        raise PromQLSyntaxError(f"unclosed '(' in {expr!r}")
    return uses


def metric_names(expr: str) -> set[str]:
    return {use.name for use in metric_uses(expr)}


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$", re.DOTALL)


def grafana_variable_query(query: str) -> str:
    """The PromQL inside a Grafana variable query such as label_values(up{...}, namespace)."""
    match = _LABEL_VALUES.match(query)
    return match["selector"] if match else query
