"""Which scenarios does certification run? Inlet's certification texts, one entry each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from inlet_bridge.certify import scenarios_advanced as advanced
from inlet_bridge.certify import scenarios_apaleo as apaleo
from inlet_bridge.certify import scenarios_api as api
from inlet_bridge.certify import scenarios_pms as pms
from inlet_bridge.certify import scenarios_spectra as spectra
from inlet_bridge.certify.context import Context


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    reference: str  # where Inlet's texts ask for it
    run: Callable[[Context], Awaitable[None]]
    needs_faults: bool = False  # injects failures: only the sandbox can


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        id="api.window",
        title="Send window: nothing sent earlier than 24 h before access starts (Inlet: 72 h)",
        reference="API guide 3.2 step 3",
        run=api.send_window,
    ),
    Scenario(
        id="api.fields",
        title="Partner name, booking ID, phone with country code; reference stored",
        reference="API guide 3.2 step 4; PMS 2",
        run=api.required_fields,
    ),
    Scenario(
        id="api.validation",
        title="Email and phone validation: invalid ones never sent, reported as warnings",
        reference="API guide 3.3; PMS 5",
        run=api.data_validation,
    ),
    Scenario(
        id="api.messages",
        title="Response messages read, not only the status",
        reference="API guide 3.2 step 5; PMS 2",
        run=api.answers_read,
        needs_faults=True,
    ),
    Scenario(
        id="api.retry",
        title="Retry every 5 minutes, at most 60 minutes, then escalation",
        reference="API guide 3.2 step 6; PMS 6",
        run=api.retries,
        needs_faults=True,
    ),
    Scenario(id="pms.3.1", title="Standard booking", reference="PMS 3.1", run=pms.standard),
    Scenario(id="pms.3.2", title="Company booking", reference="PMS 3.2", run=pms.company),
    Scenario(
        id="pms.3.3",
        title="Booking company, agency or tour operator",
        reference="PMS 3.3",
        run=pms.agency,
    ),
    Scenario(id="pms.3.4", title="Booking update", reference="PMS 3.4", run=pms.updates),
    Scenario(
        id="pms.3.5", title="Re-sync and bulk access update", reference="PMS 3.5", run=pms.resync
    ),
    Scenario(
        id="pms.3.6", title="Check-in and check-out", reference="PMS 3.6", run=pms.check_in_out
    ),
    Scenario(
        id="pms.3.7",
        title="Room change, before arrival and after check-in",
        reference="PMS 3.7",
        run=pms.room_change,
    ),
    Scenario(
        id="pms.3.8",
        title="Cancellation, deletion and no-show",
        reference="PMS 3.8",
        run=pms.cancellation,
    ),
    Scenario(
        id="pms.3.9",
        title="Early check-in and late check-out",
        reference="PMS 3.9",
        run=pms.early_late,
    ),
    Scenario(
        id="pms.4.1",
        title="Group and multi-room bookings",
        reference="PMS 4.1",
        run=advanced.group_multi_room,
    ),
    Scenario(
        id="pms.4.2",
        title="Advance code generation for groups",
        reference="PMS 4.2",
        run=advanced.group_advance,
    ),
    Scenario(
        id="pms.4.3", title="Common-door access", reference="PMS 4.3", run=advanced.common_doors
    ),
    Scenario(
        id="pms.4.4",
        title="Meeting rooms and other resources",
        reference="PMS 4.4",
        run=advanced.meeting_room,
    ),
    Scenario(
        id="pms.5",
        title="Communication per booking type",
        reference="PMS 5",
        run=advanced.communication,
    ),
    Scenario(
        id="pms.6",
        title="A failed revocation is escalated and pages",
        reference="PMS 6",
        run=advanced.failed_revocation,
        needs_faults=True,
    ),
    Scenario(
        id="spectra",
        title="Spectra PMS: reservation polled, code written back, cancellation revokes",
        reference="Spectra integration guide; PMS 2 (access information stored)",
        run=spectra.reservation_lifecycle,
    ),
    Scenario(
        id="apaleo",
        title="apaleo: notified, fetched, code written back, repeats harmless, cancellation revokes",
        reference="apaleo webhooks (notify, then fetch); PMS 2 (access information stored)",
        run=apaleo.reservation_lifecycle,
    ),
)


def in_scope(scope: list[str] | None) -> list[Scenario]:
    """Scenarios whose id equals or starts with one of `scope` (all when None)."""
    if not scope:
        return list(SCENARIOS)
    return [
        s
        for s in SCENARIOS
        if any(s.id == p or s.id.startswith(p + ".") or s.id.startswith(p) for p in scope)
    ]
