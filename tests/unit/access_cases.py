"""One booking's world for the convergence tests: two hotels, a script of steps, and the judge.

What it answers: given a script (versions of a booking delivered in some order, and steps in
which the reconciler runs or not, calls meet faults, operators retry and the clock moves), play
it on `ModelWorld`, heal the world (every call succeeds, every escalation is retried) and say
whether Inlet ended up holding what should exist, once, and the service believing what Inlet
holds. The property-based test generates the scripts; the table tests write them by hand.

The hotels: Oslo and Bergen, each its own Inlet account (a stay moving between them is revoked
at one and granted at the other); Bergen has a longer send window and follows the PMS status for
check-in and check-out. A third property, NOWHERE, is not configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.booking import BookingEvent, Contact, grant_key
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.domain.plan import external_id
from inlet_bridge.properties import parse_properties
from tests.unit.access_model import OK, Fault, ModelWorld, Screen
from tests.unit.inlet_model import Content, InletGrant

SOURCE = "acme-pms"
BOOKING_ID = "R-1"
OSLO, BERGEN, NOWHERE = "oslo-1", "bergen-1", "nowhere-9"  # NOWHERE is not configured
STAY_IDS = ("S1", "S2", "S3")
KEYS = {s: grant_key(SOURCE, BOOKING_ID, s) for s in STAY_IDS}

BASE = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # the middle arrival
START = BASE - timedelta(hours=20)  # the clock when the story starts
HOUR = timedelta(hours=1)
HEAL_ROUNDS = 40  # a passing history needs at most a handful

RAW: dict[str, Any] = {
    "inlet": {"partner": "Test Partner", "base_url": "https://inlet.example"},
    "sources": {SOURCE: {"token": {"env": "PMS_TOKEN"}, "properties": [OSLO, BERGEN]}},
    "properties": {
        OSLO: {
            "name": "Oslo",
            "timezone": "Europe/Oslo",
            "inlet_api_key": {"env": "KEY_OSLO"},
            "common_doors": ["O-MAIN"],
            "resources": {
                "101": {"access_points": ["O-101"]},
                "102": {"access_points": ["O-102"]},
            },
        },
        BERGEN: {
            # Another Inlet account, a longer send window, access following the PMS status.
            "name": "Bergen",
            "timezone": "Europe/Oslo",
            "inlet_api_key": {"env": "KEY_BERGEN"},
            "send_window_hours": 48,
            "checkin": {"rule": "pms_status"},
            "checkout": {"rule": "pms_status", "offset_minutes": 30},
            "common_doors": ["B-GATE"],
            "resources": {
                "101": {"access_points": ["B-101"]},
                "201": {"access_points": ["B-201"], "common_doors": []},
            },
        },
    },
}
HOTELS: HotelsConfig = parse_properties(
    RAW, {"PMS_TOKEN": "pms", "KEY_OSLO": "key-oslo", "KEY_BERGEN": "key-bergen"}
)
ACCOUNTS = {pid: HOTELS.inlet_account(pid) for pid in (OSLO, BERGEN)}

GUESTS = (
    Contact(name="Ola Nordmann", email="ola@example.no", phone="+4791234567"),
    Contact(name="Kari Nordmann", email="kari@example.no"),
    Contact(name="Per Uten"),  # no contact details: Inlet messages nobody
)


@dataclass(frozen=True)
class Step:
    deliver: bool
    reconcile: bool
    faults: tuple[Fault, ...]  # what the calls run in this step meet, in claim order
    operator: bool  # an operator retries every open escalation
    advance: timedelta

    def __repr__(self) -> str:  # short, for hypothesis' report of a failing example
        faults = ",".join(f"{f.kind}{f.http_status or ''}" for f in self.faults)
        flags = "D" * self.deliver + "R" * self.reconcile + "O" * self.operator
        return f"Step({flags or '-'} [{faults}] +{self.advance})"


@dataclass(frozen=True)
class Scenario:
    versions: tuple[BookingEvent, ...]
    deliveries: tuple[int, ...]  # indexes into versions, in delivery order (repeats allowed)
    refuse_ahead: bool  # ingest refuses events too far ahead; False: rows stored before that
    steps: tuple[Step, ...]


def world_for(scenario: Scenario, reading: Literal["new", "revoked"]) -> ModelWorld:
    return ModelWorld(
        HOTELS,
        source=SOURCE,
        booking_id=BOOKING_ID,
        now=START,
        after_revoke=reading,
        refuse_ahead=scenario.refuse_ahead,
    )


def play(world: ModelWorld, scenario: Scenario, screen: Screen | None = None) -> None:
    """The generated phase: each step delivers, reconciles, runs calls, moves the clock."""
    deliveries = list(scenario.deliveries)
    for step in scenario.steps:
        if step.deliver and deliveries:
            world.deliver(scenario.versions[deliveries.pop(0)])
        if step.operator:
            world.retry_escalations()
        if step.reconcile:
            world.reconcile()
        world.run_calls(step.faults, screen)
        check_never_two_grants(world)
        world.now += step.advance
    for index in deliveries:  # the PMS's last words arrive before the world heals
        world.deliver(scenario.versions[index])


def heal(world: ModelWorld) -> None:
    """Every call succeeds and operators retry every escalation, until nothing is planned; the
    clock moves only to the next call a worker may take (a retry time, a lease running out)."""
    for _ in range(HEAL_ROUNDS):
        world.retry_escalations()
        decision = world.reconcile()
        if decision is None:
            return  # no event was ever stored: nothing to do
        ran = world.run_calls(OK for _ in range(len(world.calls)))
        check_never_two_grants(world)
        if not decision.operations and not ran:
            waiting = [c.due_at() for c in world.calls if c.state == "pending"]
            if not waiting:
                return
            world.now = max(world.now, min(waiting))
    raise AssertionError(f"still planning after {HEAL_ROUNDS} rounds of success")


def check_never_two_grants(world: ModelWorld) -> None:
    pending = [c.grant_key for c in world.calls if c.state == "pending"]
    assert len(pending) == len(set(pending)), "two pending calls for one grant"
    for stay_id in STAY_IDS:
        held = held_for(world, stay_id)
        assert len(held) <= 1, f"{stay_id} has {len(held)} active grants at Inlet: {held}"


def held_for(world: ModelWorld, stay_id: str) -> list[InletGrant]:
    """The stay's grants at Inlet that open a door now or later (any account, any generation):
    a grant whose period is over opens nothing, revoked or not."""
    names = {external_id(KEYS[stay_id], g) for g in range(1, 100)}
    return [g for g in world.inlet.active() if g.external_id in names and g.content.end > world.now]


def check_converged(world: ModelWorld, *, all_sendable: bool) -> None:
    """Inlet holds what should exist, once; the service believes what Inlet holds; a new plan
    changes nothing. `all_sendable`: every desired grant's send window is open."""
    if not world.events:
        assert world.inlet.grants == {}, "Inlet holds grants for a booking never stored"
        assert world.calls == []
        return
    decision = world.decide()
    assert decision.operations == (), f"not quiescent: {decision.operations}"
    desired: dict[str, DesiredGrant] = {g.stay_id: g for g in decision.desired.grants}
    for stay_id in STAY_IDS:
        held = held_for(world, stay_id)
        want = desired.get(stay_id)
        if want is None:
            assert held == [], f"{stay_id} should have no access, Inlet holds {held}"
            continue
        if not all_sendable and want.send_after > world.now and not held:
            continue  # still waiting for its send window
        assert len(held) == 1, f"{stay_id} should have one grant, Inlet holds {held}"
        grant = held[0]
        account = ACCOUNTS[want.property_id]
        assert account is not None
        assert grant.account == account.account, f"{stay_id} granted under another account"
        assert grant.content == Content.of(want), f"{stay_id}: Inlet holds {grant.content}"
        row = world.grants[KEYS[stay_id]]
        assert (row.state, row.reference_id, row.fingerprint) == (
            "active",
            grant.reference_id,
            want.fingerprint,
        ), f"{stay_id}: the service believes {row}, Inlet holds {grant}"
    for key, row in world.grants.items():  # nothing believed active that Inlet does not hold
        if row.state == "active":
            inlet = world.inlet.grants.get(row.reference_id or "")
            assert inlet is not None, f"{key}: believed active, unknown to Inlet"
            assert inlet.active, f"{key}: believed active, revoked at Inlet"
            assert inlet.account == row.account, f"{key}: believed at another account"


def converge(world: ModelWorld) -> None:
    """Heal and check; then let every wanted grant's send window open, heal and check again."""
    heal(world)
    check_converged(world, all_sendable=False)
    windows = [g.send_after for g in world.decide().desired.grants] if world.events else []
    if windows and max(windows) > world.now:
        world.now = max(windows)
        heal(world)
    check_converged(world, all_sendable=True)
