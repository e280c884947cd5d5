"""Reading a certification report back, as a reviewer would: its header, the assumed API facts,
and per scenario what to look up at Inlet. Both report.md and report.html are read, each on its
own terms (Markdown lines; HTML elements), so a test can hold them to the same values."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import msgspec


class Report(msgspec.Struct, kw_only=True):
    header: dict[str, str]
    assumed: list[tuple[str, str]]
    lookups: dict[str, dict[str, str]]  # scenario id -> {"time window": ..., "bookingId": ...}
    results: dict[str, str]  # scenario id -> result as the scenario table shows it


_HEADER = re.compile(r"^- \*\*(?P<key>[^*]+)\*\*: (?P<value>.*)$")
_ASSUMED = re.compile(r"^- \*\*(?P<number>A\d+)\*\* (?P<fact>.*)$")
_SECTION = re.compile(r"^## (?P<id>[a-z0-9.]+): ")
_ROW = re.compile(r"^\| (?P<key>[^|]+?) \| (?P<value>[^|]*?) \|$")
_RESULT = re.compile(r"^\| (?P<id>[a-z0-9.]+) [^|]+ \| [^|]+ \| \*\*(?P<result>[^*]+)\*\* \|")


def read_markdown(text: str) -> Report:
    report = Report(header={}, assumed=[], lookups={}, results={})
    part = "header"
    scenario = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = _SECTION.match(line)
            part = "scenario" if section else line
            scenario = section["id"] if section else ""
            continue
        if part == "header" and (match := _HEADER.match(line)):
            report.header[match["key"]] = match["value"]
        elif part.startswith("## Assumed") and (match := _ASSUMED.match(line)):
            report.assumed.append((match["number"], match["fact"]))
        elif part == "## Scenarios" and (match := _RESULT.match(line)):
            report.results[match["id"]] = match["result"]
        elif part == "scenario" and line.startswith("| To find it at Inlet |"):
            report.lookups[scenario] = {}
        elif (
            part == "scenario"
            and scenario in report.lookups
            and (match := _ROW.match(line))
            and match["key"] in _LOOKUP_KEYS
        ):
            report.lookups[scenario].setdefault(match["key"], match["value"])
    return report


_LOOKUP_KEYS = ("time window", "bookingId", "externalId", "ReferenceId")


class _HtmlReport(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = Report(header={}, assumed=[], lookups={}, results={})
        self._list: str | None = None
        self._scenario = ""
        self._in_lookup = False
        self._text: list[str] | None = None
        self._row: list[str] = []
        self._rows: list[list[str]] = []
        self._table_class: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "ul":
            self._list = attributes.get("class")
        elif tag == "h2" and attributes.get("id"):
            self._scenario = attributes["id"] or ""
        elif tag == "table":
            self._table_class = attributes.get("class") or ""
            self._rows = []
        elif tag == "tr":
            self._row = []
        elif tag in ("li", "td", "th"):
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._list = None
        elif tag == "li" and self._text is not None:
            text = "".join(self._text)
            if self._list == "header":
                key, _, value = text.partition(": ")
                self.report.header[key] = value
            elif self._list == "assumed":
                number, _, fact = text.partition(" ")
                self.report.assumed.append((number, fact))
            self._text = None
        elif tag in ("td", "th") and self._text is not None:
            self._row.append("".join(self._text))
            self._text = None
        elif tag == "tr":
            self._rows.append(self._row)
        elif tag == "table":
            if self._table_class == "lookup":
                self.report.lookups[self._scenario] = {
                    row[0]: row[1] for row in self._rows if len(row) == 2
                }
            elif self._rows and self._rows[0][:1] == ["scenario"]:
                for row in self._rows[1:]:
                    self.report.results[row[0].split(" ", 1)[0]] = row[2]
            self._table_class = None


def read_html(page: str) -> Report:
    parser = _HtmlReport()
    parser.feed(page)
    parser.close()
    return parser.report
