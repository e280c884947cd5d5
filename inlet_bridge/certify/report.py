"""What does the certification reviewer read? report.md, a self-contained report.html, junit.xml.

Both reports open with what the run ran against and rests on (the header: target, build,
properties digest, clock, time zone, retry rule, scope, the assumed Inlet API facts), then per
scenario the checks, what to look up at Inlet (time window, bookingIds, externalIds,
ReferenceIds) and the evidence.
"""

from __future__ import annotations

import html
import itertools
import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from inlet_bridge.certify.context import ScenarioResult
from inlet_bridge.certify.contract import CONTRACT_DOC
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.settings import Settings

REPORT_FILES = ("report.md", "report.html", "junit.xml")

MERMAID = """flowchart LR
    PMS[PMS webhooks / Spectra poller] -->|POST /v1/events| API[inlet-bridge ingest]
    API --> LOG[(event log)]
    LOG --> REC[reconciler: desired access, plan]
    REC --> CALLS[(retry table)]
    CALLS -->|GrantAccess / UpdateAccess / RevokeAccess| INLET[Inlet API]
    INLET -->|ReferenceId, code, link, message| CALLS
    CALLS --> ACCESS[(stored access)]
    ACCESS -->|webhooks, write-back, access API| PMS"""

_BOXES = [
    ("PMS / Spectra", 10),
    ("ingest API", 160),
    ("event log", 310),
    ("reconciler", 460),
    ("retry table", 610),
    ("Inlet API", 760),
]


# The way back from Inlet: a dashed curve under the boxes, its label clear below the curve's
# lowest point (y = 100 at its middle), so no line runs through the text.
_RETURN_PATH = "M 820 70 C 820 110, 70 110, 70 72"
_RETURN_LABEL_Y = 130
_RETURN_LABEL = (
    "reference, code, link, message: stored, sent back to the PMS (webhooks, write-back,"
    " access API)"
)


def _svg() -> str:
    """The data flow as inline SVG (no script, no font download)."""
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 145" role="img"'
        ' aria-label="API data flow">'
    ]
    for label, x in _BOXES:
        parts.append(
            f'<rect x="{x}" y="30" width="120" height="40" rx="6" fill="#eef3fb" stroke="#35588a"/>'
        )
        parts.append(
            f'<text x="{x + 60}" y="55" text-anchor="middle" font-size="13">{label}</text>'
        )
    for (_, x), _next in itertools.pairwise(_BOXES):
        parts.append(
            f'<line x1="{x + 120}" y1="50" x2="{x + 150}" y2="50" stroke="#35588a" marker-end="url(#a)"/>'
        )
    parts.append(
        f'<path d="{_RETURN_PATH}" fill="none" stroke="#35588a" stroke-dasharray="4" marker-end="url(#a)"/>'
    )
    parts.append(
        f'<text x="445" y="{_RETURN_LABEL_Y}" text-anchor="middle" font-size="12">{_RETURN_LABEL}</text>'
    )
    parts.append(
        '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#35588a"/></marker></defs></svg>'
    )
    return "".join(parts)


def scope_and_limitations(hotels: HotelsConfig) -> tuple[list[str], list[str]]:
    """What the configuration puts in scope, and what a partner must state as limits."""
    scope: list[str] = [f"Partner name sent to Inlet: {hotels.inlet.partner!r}"]
    limits: list[str] = [
        "Access is granted per stay (room), not per guest: one contact per room gets Inlet's messages.",
        "A booking that disappears from a PMS feed is never taken as a cancellation; only a"
        " cancelling status or a deletion revokes.",
        f"Retries: every {hotels.retry.interval_minutes:g} min, at most {hotels.retry.max_minutes:g} min"
        f" and {hotels.retry.max_attempts} attempts, then escalation for manual follow-up.",
    ]
    for pid, prop in hotels.properties.items():
        rooms = [r for r, res in prop.resources.items() if res.kind == "room"]
        others = [r for r, res in prop.resources.items() if res.kind != "room"]
        scope.append(
            f"{pid} ({prop.name}): rooms {', '.join(rooms) or '-'}; other resources"
            f" {', '.join(others) or '-'}; common doors {', '.join(prop.common_doors) or '-'};"
            f" send window {prop.send_window_hours:g} h"
            + (f", groups {prop.group_window_hours:g} h" if prop.group_window_hours else "")
        )
        scope.append(
            f"{pid}: communication private={prop.communication.private},"
            f" company={prop.communication.company}, agency={prop.communication.agency},"
            f" group={prop.communication.group}"
        )
        limits.append(
            f"{pid}: access starts at {'PMS check-in' if prop.checkin.rule == 'pms_status' else 'booking arrival'}"
            f" ({prop.checkin.offset_minutes:+d} min) and ends at"
            f" {'PMS check-out' if prop.checkout.rule == 'pms_status' else 'booking departure'}"
            f" ({prop.checkout.offset_minutes:+d} min); statuses that revoke at once:"
            f" {', '.join(prop.revoking_statuses)}."
        )
        for door, limit in prop.doors.items():
            if limit.capacity:
                limits.append(
                    f"{pid}: door {door} holds at most {limit.capacity} codes; beyond that, access"
                    " is created without it and escalated."
                )
    for name, source in hotels.sources.items():
        how = "signed webhooks and the access API" if source.webhook_url else "the access API"
        scope.append(f"Source {name}: codes and links reach the PMS through {how}.")
    for name, connection in hotels.spectra.items():
        scope.append(
            f"Spectra connection {name} ({connection.property_id}): polled every"
            f" {connection.poll_interval_seconds:g} s; codes written back: {connection.write_back}."
        )
    return scope, limits


class RunHeader(msgspec.Struct, frozen=True, kw_only=True):
    """What a run ran against and rests on: the top of both reports."""

    target_url: str
    target_kind: str
    build: str
    properties_file: str
    properties_sha256: str
    clock: str
    time_zone: str
    retry: str
    scope: str
    run_tag: str
    started_at: datetime
    ended_at: datetime
    assumed: tuple[tuple[str, str], ...]

    def items(self) -> list[tuple[str, str]]:
        return [
            ("target", f"{self.target_url} ({self.target_kind})"),
            ("build", self.build),
            ("properties file", f"{self.properties_file} (sha256 {self.properties_sha256})"),
            ("clock", self.clock),
            ("time zone", self.time_zone),
            ("retry settings", self.retry),
            ("scope", self.scope),
            (
                "run tag",
                f"{self.run_tag} (every bookingId of this run starts with it)"
                if self.run_tag
                else "none (a fresh in-process sandbox: bookingIds start with the scenario id)",
            ),
            ("run", f"{_time(self.started_at)} to {_time(self.ended_at)} (wall clock)"),
            ("python", platform.python_version()),
        ]


ASSUMED_TITLE = f"Assumed, not published by Inlet ({CONTRACT_DOC}, section 2)"
LOOKUP_TITLE = "To find it at Inlet"


def _time(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds") if at else "-"


def lookup(result: ScenarioResult) -> list[tuple[str, str]]:
    """What Inlet's reviewer searches their logs for: the window and the ids sent."""
    window = f"{_time(result.started_at)} to {_time(result.ended_at)}"
    return [
        ("time window", window),
        ("bookingId", ", ".join(result.booking_ids) or "none sent"),
        ("externalId", ", ".join(result.external_ids) or "none sent"),
        ("ReferenceId", ", ".join(result.reference_ids) or "none sent or answered"),
    ]


def result_label(result: ScenarioResult) -> str:
    if result.status == "not_run":
        return f"not run: {result.not_run_reason}" if result.not_run_reason else "not run"
    return result.status


def write_reports(
    out: Path,
    results: Sequence[ScenarioResult],
    *,
    settings: Settings,
    header: RunHeader,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    hotels = settings.require_hotels()
    scope, limits = scope_and_limitations(hotels)
    markdown, page, junit = REPORT_FILES
    (out / markdown).write_text(_markdown(results, header, scope, limits))
    (out / page).write_text(_html(results, header, scope, limits))
    _junit(results).write(out / junit, encoding="utf-8", xml_declaration=True)


def _json(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def _cell(text: str) -> str:
    return text.replace("|", "/")


def _markdown(
    results: Sequence[ScenarioResult], header: RunHeader, scope: list[str], limits: list[str]
) -> str:
    lines = ["# inlet-bridge: Inlet certification evidence", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += ["", f"## {ASSUMED_TITLE}", ""]
    lines += [f"- **{number}** {fact}" for number, fact in header.assumed]
    passed = sum(r.status == "pass" for r in results)
    not_run = sum(r.status == "not_run" for r in results)
    lines += [
        "",
        f"**{passed} of {len(results)} scenarios passed; {not_run} not run.**",
        "",
        "## Scenarios",
        "",
    ]
    lines += ["| scenario | what Inlet asks | result | checks |", "|---|---|---|---|"]
    for r in results:
        ok = sum(c.status == "pass" for c in r.checks)
        lines.append(
            f"| {r.id} {r.title} | {r.reference} | **{_cell(result_label(r))}** | {ok}/{len(r.checks)} |"
        )
    lines += ["", "## API data flow", "", "```mermaid", MERMAID, "```", ""]
    lines += ["## Certified scope (from the configuration)", ""] + [f"- {s}" for s in scope]
    lines += ["", "## Known limitations", ""] + [f"- {s}" for s in limits]
    for r in results:
        lines += ["", f"## {r.id}: {r.title} — {result_label(r)}", ""]
        lines += [f"Inlet's text: {r.reference}.", ""]
        lines += [f"| {LOOKUP_TITLE} | |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in lookup(r)]
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.status} | {_cell(c.detail)} |" for c in r.checks]
        lines += [
            "",
            "<details><summary>Events sent (personal data masked)</summary>",
            "",
            "```json",
            _json(list(r.events)),
            "```",
            "</details>",
        ]
        lines += [
            "",
            "<details><summary>Inlet calls and answers (masked)</summary>",
            "",
            "```json",
            _json(list(r.inlet_calls)),
            "```",
            "</details>",
        ]
        lines += [
            "",
            "<details><summary>Service log lines</summary>",
            "",
            "```",
            *r.log_lines,
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1d2733}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #c8d1dc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.pass{color:#1b7a35;font-weight:bold}.fail{color:#b3261e;font-weight:bold}.not_run{color:#7a6a1b;font-weight:bold}
pre{background:#f4f6f8;padding:.6rem;overflow:auto;font-size:.8rem}"""


def _html(
    results: Sequence[ScenarioResult], header: RunHeader, scope: list[str], limits: list[str]
) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="#{e(r.id)}">{e(r.id)}</a> {e(r.title)}</td><td>{e(r.reference)}</td>'
        f'<td class="{r.status}">{e(result_label(r))}</td><td>{sum(c.status == "pass" for c in r.checks)}/{len(r.checks)}</td></tr>'
        for r in results
    )
    sections = []
    for r in results:
        checks = "".join(
            f'<tr><td>{e(c.name)}</td><td class="{c.status}">{c.status}</td><td>{e(c.detail)}</td></tr>'
            for c in r.checks
        )
        ids = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in lookup(r))
        sections.append(
            f'<h2 id="{e(r.id)}">{e(r.id)}: {e(r.title)} — <span class="{r.status}">{e(result_label(r))}</span></h2>'
            f"<p>Inlet's text: {e(r.reference)}</p>"
            f'<table class="lookup"><tr><th colspan="2">{e(LOOKUP_TITLE)}</th></tr>{ids}</table>'
            f"<table><tr><th>check</th><th>result</th><th>detail</th></tr>{checks}</table>"
            f"<details><summary>Events sent (masked)</summary><pre>{e(_json(list(r.events)))}</pre></details>"
            f"<details><summary>Inlet calls and answers (masked)</summary><pre>{e(_json(list(r.inlet_calls)))}</pre></details>"
            f"<details><summary>Service log lines</summary><pre>{e(chr(10).join(r.log_lines))}</pre></details>"
        )
    head = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in header.items())
    assumed = "".join(f"<li><b>{e(n)}</b> {_code(e(fact))}</li>" for n, fact in header.assumed)
    passed = sum(r.status == "pass" for r in results)
    not_run = sum(r.status == "not_run" for r in results)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>inlet-bridge certification</title>'
        f"<style>{_CSS}</style></head><body><h1>inlet-bridge: Inlet certification evidence</h1>"
        f'<ul class="header">{head}</ul><h2>{e(ASSUMED_TITLE)}</h2><ul class="assumed">{assumed}</ul>'
        f"<p><b>{passed} of {len(results)} scenarios passed; {not_run} not run.</b></p>"
        f"<table><tr><th>scenario</th><th>what Inlet asks</th><th>result</th><th>checks</th></tr>{rows}</table>"
        f"<h2>API data flow</h2>{_svg()}"
        "<h2>Certified scope (from the configuration)</h2><ul>"
        + "".join(f"<li>{e(s)}</li>" for s in scope)
        + "</ul>"
        "<h2>Known limitations</h2><ul>"
        + "".join(f"<li>{e(s)}</li>" for s in limits)
        + "</ul>"
        + "".join(sections)
        + "</body></html>\n"
    )


def _code(escaped: str) -> str:
    """Markdown's `inline code` as HTML <code> (the text is already escaped)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _junit(results: Sequence[ScenarioResult]) -> ET.ElementTree[ET.Element]:
    suite = ET.Element(
        "testsuite",
        name="inlet-certification",
        tests=str(len(results)),
        failures=str(sum(r.status == "fail" for r in results)),
        skipped=str(sum(r.status == "not_run" for r in results)),
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname="certify", name=f"{r.id} {r.title}", time=str(r.seconds)
        )
        failed = [c for c in r.checks if c.status == "fail"]
        if failed:
            node = ET.SubElement(case, "failure", message=failed[0].name)
            node.text = "\n".join(f"{c.name}: {c.detail}" for c in failed)
        elif r.status == "not_run":
            ET.SubElement(case, "skipped", message=f"not run: {r.not_run_reason or 'no reason'}")
    return ET.ElementTree(suite)
