"""Which access should exist for a booking at a given time? Tables of cases for `desired_access`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from inlet_bridge.domain.access import (
    DesiredAccess,
    DesiredGrant,
    StayIssue,
    access_over,
    desired_access,
)
from inlet_bridge.domain.booking import Booking, Contact
from inlet_bridge.domain.config import Property
from inlet_bridge.domain.fold import BookingState
from tests.unit.domain_cases import (
    ARRIVAL,
    DEPARTURE,
    HOUR,
    KARI,
    MINUTE,
    NOW,
    OLA,
    OSLO,
    PROPERTY_ID,
    SILENT,
    SOURCE,
    booking,
    history,
    prop,
    state_of,
    stay,
)

DEFAULT = prop()
NO_CONTACT_GUEST = (
    "no guest contact details: access is created but Inlet sends no message;"
    " hand the code over another way"
)
NO_CONTACT_ORGANIZER = (
    "no organizer contact details: access is created but Inlet sends no message;"
    " hand the code over another way"
)


def access(
    state: BookingState | None,
    p: Property | None = DEFAULT,
    now: datetime = NOW,
    door_usage: Mapping[str, int] | None = None,
) -> DesiredAccess:
    return desired_access(state, p, PROPERTY_ID, now, door_usage)


def only_grant(result: DesiredAccess) -> DesiredGrant:
    assert len(result.grants) == 1, result
    return result.grants[0]


def without_fingerprint(grant: DesiredGrant) -> DesiredGrant:
    return msgspec.structs.replace(grant, fingerprint="")


# --- the grant itself ------------------------------------------------------------------------


def test_one_grant_per_stay_with_every_field() -> None:
    result = access(state_of(booking()))

    grant = only_grant(result)
    assert without_fingerprint(grant) == DesiredGrant(
        grant_key="acme-pms:R-1001:S1",
        source=SOURCE,
        booking_id="R-1001",
        stay_id="S1",
        property_id=PROPERTY_ID,
        resource_id="101",
        operation="code",
        access_points=("L-101", "MAIN", "NIGHT"),
        valid_from=ARRIVAL,
        valid_to=DEPARTURE,
        guest_name="Ola Nordmann",
        email="ola@example.no",
        phone="+4791234567",
        notify=True,
        send_after=ARRIVAL - 24 * HOUR,
        fingerprint="",
    )
    assert len(grant.fingerprint) == 32
    assert int(grant.fingerprint, 16) >= 0
    assert result.issues == ()
    assert result.next_look_at == DEPARTURE


def test_unlock_operation_comes_from_the_property() -> None:
    grant = only_grant(access(state_of(booking()), prop(operation="unlock")))

    assert grant.operation == "unlock"


def test_grant_keys_of_a_booking_with_several_stays() -> None:
    value = booking(stay("S1"), stay("S2", resource_id="102"), stay("S3", resource_id="201"))

    result = access(state_of(value))

    assert [(g.grant_key, g.resource_id) for g in result.grants] == [
        ("acme-pms:R-1001:S1", "101"),
        ("acme-pms:R-1001:S2", "102"),
        ("acme-pms:R-1001:S3", "201"),
    ]


@pytest.mark.parametrize(
    ("resource_id", "changes", "expected"),
    [
        pytest.param("101", {}, ("L-101", "MAIN", "NIGHT"), id="room-plus-common-doors"),
        pytest.param("201", {}, ("L-201", "MAIN", "FLOOR-2"), id="resource-overrides-common"),
        pytest.param("GARAGE", {}, ("L-GARAGE",), id="resource-with-no-common-doors"),
        pytest.param("SUITE", {}, ("L-SUITE", "MAIN", "NIGHT"), id="no-duplicates"),
        pytest.param(
            "101", {"common_doors": ["MAIN", "L-101", "MAIN"]}, ("L-101", "MAIN"), id="dedup-common"
        ),
        pytest.param("101", {"common_doors": []}, ("L-101",), id="property-without-common-doors"),
    ],
)
def test_access_points(
    resource_id: str, changes: dict[str, Any], expected: tuple[str, ...]
) -> None:
    grant = only_grant(access(state_of(booking(stay(resource_id=resource_id))), prop(**changes)))

    assert grant.access_points == expected


# --- validity ----------------------------------------------------------------------------------

LATE_DEPARTURE = datetime(2026, 11, 25, 23, 0, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("changes", "departure", "valid_from", "valid_to"),
    [
        pytest.param({}, DEPARTURE, ARRIVAL, DEPARTURE, id="booking-times"),
        pytest.param(
            {"checkin": {"offset_minutes": -60}},
            DEPARTURE,
            datetime(2026, 11, 23, 14, 0, tzinfo=OSLO),
            DEPARTURE,
            id="negative-checkin-offset-is-earlier",
        ),
        pytest.param(
            {"checkin": {"offset_minutes": 30}},
            DEPARTURE,
            datetime(2026, 11, 23, 15, 30, tzinfo=OSLO),
            DEPARTURE,
            id="positive-checkin-offset-is-later",
        ),
        pytest.param(
            {"checkout": {"offset_minutes": 90}},
            LATE_DEPARTURE,
            ARRIVAL,
            datetime(2026, 11, 26, 0, 30, tzinfo=OSLO),
            id="checkout-offset-crosses-midnight",
        ),
        pytest.param(
            {"checkout": {"offset_minutes": -30}},
            DEPARTURE,
            ARRIVAL,
            datetime(2026, 11, 25, 10, 30, tzinfo=OSLO),
            id="negative-checkout-offset",
        ),
        pytest.param(
            {"checkin": {"offset_minutes": -1440}, "checkout": {"offset_minutes": 1440}},
            DEPARTURE,
            ARRIVAL - 24 * HOUR,
            DEPARTURE + 24 * HOUR,
            id="largest-offsets",
        ),
    ],
)
def test_validity_with_offsets(
    changes: dict[str, Any], departure: datetime, valid_from: datetime, valid_to: datetime
) -> None:
    p = prop(**changes)
    grant = only_grant(access(state_of(booking(stay(departure=departure))), p))

    assert (grant.valid_from, grant.valid_to) == (valid_from, valid_to)
    assert grant.send_after == valid_from - 24 * HOUR


CHECKIN_TIME = ARRIVAL - 2 * HOUR  # the guest checks in early, at 13:00
CHECKOUT_TIME = DEPARTURE - HOUR  # and leaves at 10:00
PMS_CHECKIN = {"checkin": {"rule": "pms_status", "offset_minutes": -15}}
PMS_CHECKOUT = {
    "checkout": {"rule": "pms_status", "offset_minutes": 30},
    "revoking_statuses": ["cancelled", "no_show"],
}


def _checked_in() -> BookingState:
    return history(
        (NOW - 48 * HOUR, booking(stay(status="confirmed"))),
        (CHECKIN_TIME, booking(stay(status="checked_in"))),
    )


def _checked_out() -> BookingState:
    return history(
        (NOW - 48 * HOUR, booking(stay(status="confirmed"))),
        (CHECKIN_TIME, booking(stay(status="checked_in"))),
        (CHECKOUT_TIME, booking(stay(status="checked_out"))),
    )


@pytest.mark.parametrize(
    ("state", "changes", "now", "expected"),
    [
        pytest.param(
            state_of(booking(stay(status="confirmed"))),
            PMS_CHECKIN,
            ARRIVAL + HOUR,
            None,
            id="no-grant-before-pms-check-in",
        ),
        pytest.param(
            _checked_in(),
            PMS_CHECKIN,
            ARRIVAL - HOUR,
            (CHECKIN_TIME - 15 * MINUTE, DEPARTURE),
            id="valid-from-pms-check-in-plus-offset",
        ),
        pytest.param(
            _checked_in(),
            PMS_CHECKOUT,
            ARRIVAL - HOUR,
            (ARRIVAL, DEPARTURE + 30 * MINUTE),
            id="not-checked-out-yet-departure-plus-offset",
        ),
        pytest.param(
            _checked_out(),
            PMS_CHECKOUT,
            CHECKOUT_TIME + 10 * MINUTE,
            (ARRIVAL, CHECKOUT_TIME + 30 * MINUTE),
            id="valid-to-pms-check-out-plus-offset",
        ),
        pytest.param(
            _checked_out(),
            PMS_CHECKOUT,
            CHECKOUT_TIME + 30 * MINUTE,
            None,
            id="ended-at-check-out-plus-offset",
        ),
        pytest.param(
            _checked_out(),
            {"checkout": {"rule": "pms_status", "offset_minutes": 30}},
            CHECKOUT_TIME + 10 * MINUTE,
            (ARRIVAL, CHECKOUT_TIME + 30 * MINUTE),
            id="checkout-rule-beats-listed-checked-out",
        ),
        pytest.param(
            _checked_out(),
            {"checkout": {"offset_minutes": 30}},
            CHECKOUT_TIME + 10 * MINUTE,
            None,
            id="booking-time-rule-checked-out-revokes-at-once",
        ),
        pytest.param(
            history(
                (NOW - 48 * HOUR, booking(stay(status="checked_in"))),
                (DEPARTURE + 2 * HOUR, booking(stay(status="checked_out"))),
            ),
            PMS_CHECKOUT,
            DEPARTURE + 2 * HOUR + MINUTE,
            None,
            id="late-check-out-does-not-reopen-access",
        ),
        pytest.param(
            history(
                (NOW - 48 * HOUR, booking(stay(status="confirmed"))),
                (CHECKOUT_TIME, booking(stay(status="checked_out"))),
            ),
            {**PMS_CHECKIN, **PMS_CHECKOUT},
            CHECKOUT_TIME,
            None,
            id="first-seen-checked-out-gets-no-access",
        ),
        pytest.param(
            _checked_out(),
            {**PMS_CHECKIN, **PMS_CHECKOUT},
            CHECKOUT_TIME,
            (CHECKIN_TIME - 15 * MINUTE, CHECKOUT_TIME + 30 * MINUTE),
            id="both-rules-by-pms-status",
        ),
    ],
)
def test_pms_status_rules(
    state: BookingState,
    changes: dict[str, Any],
    now: datetime,
    expected: tuple[datetime, datetime] | None,
) -> None:
    result = access(state, prop(**changes), now)

    if expected is None:
        assert result == DesiredAccess(grants=(), issues=(), next_look_at=None)
    else:
        grant = only_grant(result)
        assert (grant.valid_from, grant.valid_to) == expected
        assert result.next_look_at == grant.valid_to


# --- statuses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "revoking", "has_grant"),
    [
        pytest.param("confirmed", None, True, id="confirmed"),
        pytest.param("checked_in", None, True, id="checked-in"),
        pytest.param("cancelled", None, False, id="cancelled-revokes"),
        pytest.param("no_show", None, False, id="no-show-revokes"),
        pytest.param("checked_out", None, False, id="checked-out-revokes"),
        # cancelled and no_show revoke even where a list leaves them out (the properties file
        # refuses such a list; the rule holds without it)
        pytest.param("no_show", ["cancelled", "checked_out"], False, id="no-show-always-revokes"),
        pytest.param("cancelled", ["no_show"], False, id="cancelled-always-revokes"),
        pytest.param("cancelled", ["cancelled", "no_show"], False, id="only-required-listed"),
        pytest.param(
            "checked_out", ["cancelled", "no_show"], True, id="checked-out-not-listed-keeps-access"
        ),
        pytest.param(
            "checked_out", ["cancelled", "no_show", "checked_out"], False, id="checked-out-added"
        ),
        pytest.param(
            "checked_in",
            ["cancelled", "no_show", "checked_in"],
            False,
            id="any-status-may-be-added",
        ),
    ],
)
def test_revoking_statuses(status: str, revoking: list[str] | None, has_grant: bool) -> None:
    # Set on the Struct directly: the rule must hold even for a list the file would refuse.
    p = (
        msgspec.structs.replace(DEFAULT, revoking_statuses=tuple(revoking))
        if revoking is not None
        else DEFAULT
    )

    result = access(state_of(booking(stay(status=status))), p)

    assert [g.grant_key for g in result.grants] == (["acme-pms:R-1001:S1"] if has_grant else [])
    assert result.issues == ()
    assert result.next_look_at == (DEPARTURE if has_grant else None)


@pytest.mark.parametrize(
    ("state", "now", "over"),
    [
        pytest.param(state_of(booking()), NOW, False, id="to-come"),
        pytest.param(state_of(booking()), NOW - 72 * HOUR, False, id="before-its-window"),
        pytest.param(state_of(booking()), DEPARTURE + HOUR, True, id="ended"),
        pytest.param(state_of(booking(stay(status="cancelled"))), NOW, True, id="cancelled"),
        pytest.param(state_of(booking(stay(status="no_show"))), NOW, True, id="no-show"),
        pytest.param(state_of(booking(deleted=True)), NOW, True, id="deleted"),
        pytest.param(
            state_of(booking(stay(resource_id=None))), NOW, False, id="waiting-for-a-room"
        ),
        pytest.param(
            state_of(booking(stay(status="checked_out"))), NOW, True, id="checked-out-listed"
        ),
    ],
)
def test_access_over(state: BookingState, now: datetime, over: bool) -> None:
    assert access_over(state, state.stays[0], DEFAULT, now) is over


def test_access_over_under_an_unknown_property_is_a_problem_not_a_decision() -> None:
    cancelled = state_of(booking(stay(status="cancelled")))

    assert access_over(cancelled, cancelled.stays[0], None, NOW) is False
    assert access_over(state_of(booking(deleted=True)), cancelled.stays[0], None, NOW) is True


def test_group_with_one_cancelled_stay_keeps_the_others() -> None:
    value = booking(
        stay("S1"),
        stay("S2", resource_id="102", status="cancelled"),
        stay("S3", resource_id="201"),
        booking_type="group",
        organizer=KARI,
    )

    result = access(state_of(value))

    assert [g.grant_key for g in result.grants] == ["acme-pms:R-1001:S1", "acme-pms:R-1001:S3"]
    assert result.issues == ()


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(None, id="no-events"),
        pytest.param(state_of(booking(deleted=True)), id="deleted"),
        pytest.param(state_of(booking(), booking(deleted=True)), id="deleted-after-created"),
        pytest.param(
            state_of(booking(stay(resource_id=None), deleted=True)), id="deleted-without-room"
        ),
    ],
)
def test_nothing_for_a_missing_or_deleted_booking(state: BookingState | None) -> None:
    assert access(state) == DesiredAccess(grants=(), issues=(), next_look_at=None)


def test_revived_booking_wants_access_again() -> None:
    result = access(state_of(booking(), booking(deleted=True), booking()))

    assert [g.grant_key for g in result.grants] == ["acme-pms:R-1001:S1"]


# --- send window and next look ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("booking_type", "changes", "window_hours"),
    [
        pytest.param("private", {}, 24, id="default-24h"),
        pytest.param("private", {"send_window_hours": 48}, 48, id="configured-48h"),
        pytest.param("private", {"send_window_hours": 72}, 72, id="hard-max-72h"),
        pytest.param("private", {"send_window_hours": 0.5}, 0.5, id="half-hour"),
        pytest.param("group", {}, 24, id="group-without-group-window"),
        pytest.param("group", {"group_window_hours": 72}, 72, id="group-window-for-groups"),
        pytest.param("private", {"group_window_hours": 72}, 24, id="group-window-not-for-private"),
        pytest.param("agency", {"group_window_hours": 48}, 24, id="group-window-not-for-agency"),
    ],
)
def test_send_window(booking_type: str, changes: dict[str, Any], window_hours: float) -> None:
    value = booking(stay(), booking_type=booking_type, organizer=KARI)
    now = ARRIVAL - 80 * HOUR  # before every window

    result = access(state_of(value, first_at=now - HOUR), prop(**changes), now)

    grant = only_grant(result)
    assert grant.send_after == ARRIVAL - timedelta(hours=window_hours)
    assert result.next_look_at == grant.send_after


@pytest.mark.parametrize(
    ("now", "next_look_at"),
    [
        pytest.param(ARRIVAL - 48 * HOUR, ARRIVAL - 24 * HOUR, id="before-window-look-at-opening"),
        pytest.param(ARRIVAL - 24 * HOUR - MINUTE, ARRIVAL - 24 * HOUR, id="minute-before-window"),
        pytest.param(ARRIVAL - 24 * HOUR, DEPARTURE, id="exactly-at-window-look-at-end"),
        pytest.param(ARRIVAL - HOUR, DEPARTURE, id="inside-window-look-at-end"),
        pytest.param(ARRIVAL + HOUR, DEPARTURE, id="during-stay-look-at-end"),
        pytest.param(DEPARTURE - MINUTE, DEPARTURE, id="last-minute"),
    ],
)
def test_next_look_at_for_one_stay(now: datetime, next_look_at: datetime) -> None:
    result = access(state_of(booking(), first_at=now - 72 * HOUR), now=now)

    assert only_grant(result).send_after == ARRIVAL - 24 * HOUR
    assert result.next_look_at == next_look_at


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(DEPARTURE, id="exactly-at-end"),
        pytest.param(DEPARTURE + HOUR, id="after-end"),
    ],
)
def test_ended_stay_wants_no_grant(now: datetime) -> None:
    assert access(state_of(booking()), now=now) == DesiredAccess(
        grants=(), issues=(), next_look_at=None
    )


def test_stay_ending_before_it_starts_wants_no_grant() -> None:
    p = prop(checkin={"offset_minutes": 60}, checkout={"offset_minutes": -60})
    value = booking(stay(arrival=ARRIVAL, departure=ARRIVAL + HOUR))

    assert access(state_of(value), p, now=ARRIVAL - 2 * HOUR) == DesiredAccess(
        grants=(), issues=(), next_look_at=None
    )


LATER = ARRIVAL + 72 * HOUR


@pytest.mark.parametrize(
    ("stays", "now", "next_look_at"),
    [
        pytest.param(
            (
                stay("S1", arrival=LATER, departure=LATER + 48 * HOUR),
                stay("S2", resource_id="102"),
            ),
            ARRIVAL - 48 * HOUR,
            ARRIVAL - 24 * HOUR,
            id="earliest-window-opening",
        ),
        pytest.param(
            (
                stay("S1", arrival=LATER, departure=LATER + 48 * HOUR),
                stay("S2", resource_id="102"),
            ),
            ARRIVAL - HOUR,
            DEPARTURE,
            id="end-of-one-before-opening-of-other",
        ),
        pytest.param(
            (
                stay("S1", arrival=ARRIVAL, departure=LATER + 48 * HOUR),
                stay("S2", resource_id="102", arrival=LATER, departure=LATER + HOUR),
            ),
            ARRIVAL - HOUR,
            LATER - 24 * HOUR,
            id="opening-of-other-before-end-of-one",
        ),
        pytest.param(
            (
                stay("S1", departure=ARRIVAL + HOUR),
                stay("S2", resource_id="102", departure=LATER),
            ),
            ARRIVAL + 2 * HOUR,
            LATER,
            id="ended-stay-ignored",
        ),
        pytest.param(
            (stay("S1"), stay("S2", resource_id="102", status="cancelled")),
            ARRIVAL - 48 * HOUR,
            ARRIVAL - 24 * HOUR,
            id="cancelled-stay-ignored",
        ),
    ],
)
def test_next_look_at_is_the_minimum_across_stays(
    stays: tuple[Any, ...], now: datetime, next_look_at: datetime
) -> None:
    result = access(state_of(booking(*stays), first_at=now - 72 * HOUR), now=now)

    assert result.next_look_at == next_look_at


# --- rooms and resources -----------------------------------------------------------------------

NO_ROOM = StayIssue(
    stay_id="S1",
    kind="no_room_assigned",
    message="no room assigned shortly before arrival; access cannot be sent",
    escalate=True,
)


@pytest.mark.parametrize(
    ("changes", "now", "issues", "next_look_at"),
    [
        pytest.param({}, ARRIVAL - 48 * HOUR, (), ARRIVAL - 4 * HOUR, id="early-look-at-lead"),
        pytest.param({}, ARRIVAL - 4 * HOUR - MINUTE, (), ARRIVAL - 4 * HOUR, id="minute-early"),
        pytest.param({}, ARRIVAL - 4 * HOUR, (NO_ROOM,), None, id="exactly-at-lead-escalates"),
        pytest.param({}, ARRIVAL - HOUR, (NO_ROOM,), None, id="within-lead-escalates"),
        pytest.param({}, ARRIVAL + HOUR, (NO_ROOM,), None, id="during-stay-escalates"),
        pytest.param({}, DEPARTURE, (), None, id="after-departure-nothing"),
        pytest.param(
            {"unassigned_room_lead_hours": 24},
            ARRIVAL - 25 * HOUR,
            (),
            ARRIVAL - 24 * HOUR,
            id="configured-lead",
        ),
        pytest.param(
            {"unassigned_room_lead_hours": 24},
            ARRIVAL - 6 * HOUR,
            (NO_ROOM,),
            None,
            id="configured-lead-escalates",
        ),
    ],
)
def test_unassigned_room(
    changes: dict[str, Any],
    now: datetime,
    issues: tuple[StayIssue, ...],
    next_look_at: datetime | None,
) -> None:
    value = booking(stay(resource_id=None))

    result = access(state_of(value, first_at=now - 72 * HOUR), prop(**changes), now)

    assert result == DesiredAccess(grants=(), issues=issues, next_look_at=next_look_at)


def test_unassigned_room_of_a_cancelled_stay_is_no_issue() -> None:
    value = booking(stay(resource_id=None, status="cancelled"))

    assert access(state_of(value), now=ARRIVAL - HOUR) == DesiredAccess(
        grants=(), issues=(), next_look_at=None
    )


def test_unmapped_resource_escalates() -> None:
    value = booking(stay("S1", resource_id="999"), stay("S2", resource_id="102"))

    result = access(state_of(value))

    assert [g.grant_key for g in result.grants] == ["acme-pms:R-1001:S2"]
    assert result.issues == (
        StayIssue(
            stay_id="S1",
            kind="unmapped_resource",
            message="resource '999' has no access points in the configuration",
            escalate=True,
        ),
    )


def test_unknown_property_escalates_every_stay() -> None:
    value = booking(stay("S1"), stay("S2", resource_id="102"))

    result = desired_access(state_of(value), None, "nowhere-9", NOW)

    assert result == DesiredAccess(
        grants=(),
        issues=tuple(
            StayIssue(
                stay_id=stay_id,
                kind="unmapped_resource",
                message="property 'nowhere-9' is not configured",
                escalate=True,
            )
            for stay_id in ("S1", "S2")
        ),
        next_look_at=None,
    )


# --- communication ------------------------------------------------------------------------------

EMAIL_ONLY = Contact(name="Eva Epost", email="eva@example.no")
PHONE_ONLY = Contact(name="Tor Telefon", phone="+4791234569")
SILENT_ORGANIZER = Contact(name="Stille Arrangør")


def _issue(message: str) -> tuple[StayIssue, ...]:
    return (StayIssue(stay_id="S1", kind="no_contact", message=message, escalate=False),)


@pytest.mark.parametrize(
    ("value", "changes", "expected", "issues"),
    [
        pytest.param(
            booking(stay(guests=(OLA,))),
            {},
            ("Ola Nordmann", "ola@example.no", "+4791234567", True),
            (),
            id="private-to-guest",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="company", company="Acme AS"),
            {},
            ("Ola Nordmann", "ola@example.no", "+4791234567", True),
            (),
            id="company-to-guest",
        ),
        pytest.param(
            booking(stay(guests=(SILENT, EMAIL_ONLY))),
            {},
            ("Eva Epost", "eva@example.no", None, True),
            (),
            id="first-guest-with-contact-details",
        ),
        pytest.param(
            booking(stay(guests=(PHONE_ONLY,))),
            {},
            ("Tor Telefon", None, "+4791234569", True),
            (),
            id="phone-only",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="agency", organizer=KARI),
            {},
            ("Ola Nordmann", None, None, False),
            (),
            id="agency-none-keeps-name",
        ),
        pytest.param(
            booking(stay(guests=()), booking_type="agency", organizer=KARI),
            {},
            ("Kari Nordmann", None, None, False),
            (),
            id="agency-none-organizer-name",
        ),
        pytest.param(
            booking(stay(guests=()), booking_type="agency"),
            {},
            (None, None, None, False),
            (),
            id="agency-none-no-name",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="group", organizer=KARI),
            {},
            ("Kari Nordmann", "kari@example.no", "+4791234568", True),
            (),
            id="group-to-organizer",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="group"),
            {},
            ("Ola Nordmann", None, None, False),
            _issue(NO_CONTACT_ORGANIZER),
            id="group-without-organizer",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="group", organizer=SILENT_ORGANIZER),
            {},
            ("Stille Arrangør", None, None, False),
            _issue(NO_CONTACT_ORGANIZER),
            id="group-organizer-without-details",
        ),
        pytest.param(
            booking(stay(guests=(SILENT,))),
            {},
            ("Per Uten", None, None, False),
            _issue(NO_CONTACT_GUEST),
            id="guest-without-details",
        ),
        pytest.param(
            booking(stay(guests=())),
            {},
            (None, None, None, False),
            _issue(NO_CONTACT_GUEST),
            id="no-guest-at-all",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), communication="none"),
            {},
            ("Ola Nordmann", None, None, False),
            (),
            id="booking-says-none",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), communication="organizer", organizer=KARI),
            {},
            ("Kari Nordmann", "kari@example.no", "+4791234568", True),
            (),
            id="booking-says-organizer",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="agency", communication="guest"),
            {},
            ("Ola Nordmann", "ola@example.no", "+4791234567", True),
            (),
            id="booking-overrides-agency-default",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="agency"),
            {"communication": {"agency": "guest"}},
            ("Ola Nordmann", "ola@example.no", "+4791234567", True),
            (),
            id="property-default-for-agency",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="company"),
            {"communication": {"company": "none"}},
            ("Ola Nordmann", None, None, False),
            (),
            id="property-default-for-company",
        ),
    ],
)
def test_communication(
    value: Booking,
    changes: dict[str, Any],
    expected: tuple[str | None, str | None, str | None, bool],
    issues: tuple[StayIssue, ...],
) -> None:
    result = access(state_of(value), prop(**changes))

    grant = only_grant(result)  # missing contact details never block access
    assert (grant.guest_name, grant.email, grant.phone, grant.notify) == expected
    assert result.issues == issues


# --- shared doors with a capacity ---------------------------------------------------------------


def _door_capacity(door: str, capacity: int) -> StayIssue:
    return StayIssue(
        stay_id="S2",
        kind="door_capacity",
        message=f"door {door!r} holds its maximum of {capacity} codes;"
        " access was created without it",
        escalate=True,
    )


@pytest.mark.parametrize(
    ("usage", "expected_points", "issues"),
    [
        pytest.param(
            {},
            [("L-101", "MAIN", "NIGHT"), ("L-102", "MAIN", "NIGHT")],
            (),
            id="room-for-both",
        ),
        pytest.param(
            {"MAIN": 1},
            [("L-101", "MAIN", "NIGHT"), ("L-102", "NIGHT")],
            (_door_capacity("MAIN", 2),),
            id="second-stay-left-out",
        ),
        pytest.param(
            {"MAIN": 5, "OTHER": 100},
            [("L-101", "NIGHT"), ("L-102", "NIGHT")],
            (
                msgspec.structs.replace(_door_capacity("MAIN", 2), stay_id="S1"),
                _door_capacity("MAIN", 2),
            ),
            id="door-full",
        ),
    ],
)
def test_door_capacity(
    usage: dict[str, int],
    expected_points: list[tuple[str, ...]],
    issues: tuple[StayIssue, ...],
) -> None:
    p = prop(doors={"MAIN": {"capacity": 2}})
    value = booking(stay("S1"), stay("S2", resource_id="102"))
    given = dict(usage)

    result = access(state_of(value), p, door_usage=usage)

    assert [g.access_points for g in result.grants] == expected_points
    assert result.issues == issues
    assert usage == given  # the caller's counts are not changed


def test_door_left_out_changes_the_fingerprint() -> None:
    p = prop(doors={"MAIN": {"capacity": 1}})
    state = state_of(booking())

    kept = only_grant(access(state, p, door_usage={}))
    left_out = only_grant(access(state, p, door_usage={"MAIN": 1}))

    assert kept.fingerprint != left_out.fingerprint
    assert (
        left_out.fingerprint == only_grant(access(state, prop(common_doors=["NIGHT"]))).fingerprint
    )


# --- fingerprint ------------------------------------------------------------------------------

BASE = booking(stay(guests=(OLA,)))


@pytest.mark.parametrize(
    ("value", "changes", "now", "differs"),
    [
        pytest.param(BASE, {}, NOW, False, id="same-booking"),
        pytest.param(BASE, {}, NOW + HOUR, False, id="later-now"),
        pytest.param(booking(stay(arrival=ARRIVAL + HOUR)), {}, NOW, True, id="arrival-moved"),
        pytest.param(
            booking(stay(departure=DEPARTURE + HOUR)), {}, NOW, True, id="departure-moved"
        ),
        pytest.param(BASE, {"checkin": {"offset_minutes": -30}}, NOW, True, id="checkin-offset"),
        pytest.param(BASE, {"checkout": {"offset_minutes": 30}}, NOW, True, id="checkout-offset"),
        pytest.param(booking(stay(resource_id="102")), {}, NOW, True, id="other-locks"),
        pytest.param(booking(stay(resource_id="101-twin")), {}, NOW, False, id="same-locks"),
        pytest.param(BASE, {"common_doors": ["MAIN"]}, NOW, True, id="common-doors-changed"),
        pytest.param(BASE, {"operation": "unlock"}, NOW, True, id="operation-changed"),
        pytest.param(
            booking(stay(guests=(msgspec.structs.replace(OLA, email="ny@example.no"),))),
            {},
            NOW,
            True,
            id="email-changed",
        ),
        pytest.param(
            booking(stay(guests=(msgspec.structs.replace(OLA, phone="+4799999999"),))),
            {},
            NOW,
            True,
            id="phone-changed",
        ),
        pytest.param(
            booking(stay(guests=(msgspec.structs.replace(OLA, name="Ola N. Nordmann"),))),
            {},
            NOW,
            True,
            id="name-changed",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), communication="none"), {}, NOW, True, id="messages-off"
        ),
        pytest.param(booking(stay(guests=(OLA, KARI))), {}, NOW, False, id="second-guest-added"),
        pytest.param(
            booking(stay(guests=(OLA,), status="checked_in")), {}, NOW, False, id="status-only"
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), booking_type="company", company="Acme AS"),
            {},
            NOW,
            False,
            id="company-with-same-contact",
        ),
        pytest.param(
            booking(stay(guests=(OLA,)), stay("S2", resource_id="102")),
            {},
            NOW,
            False,
            id="other-stay-added",
        ),
        pytest.param(BASE, {"send_window_hours": 48}, NOW, False, id="send-window-changed"),
        pytest.param(
            BASE, {"unassigned_room_lead_hours": 8}, NOW, False, id="unrelated-setting-changed"
        ),
    ],
)
def test_fingerprint_changes_only_when_inlet_must_be_told(
    value: Booking, changes: dict[str, Any], now: datetime, differs: bool
) -> None:
    before = only_grant(access(state_of(BASE)))
    after = access(state_of(value), prop(**changes), now).grants[0]

    assert after.grant_key == before.grant_key
    assert (after.fingerprint != before.fingerprint) is differs


def test_fingerprint_ignores_how_the_same_instant_is_written() -> None:
    utc = booking(stay(arrival=ARRIVAL.astimezone(UTC), departure=DEPARTURE.astimezone(UTC)))

    before = only_grant(access(state_of(BASE)))
    after = only_grant(access(state_of(utc)))

    assert (after.valid_from, after.valid_to) == (before.valid_from, before.valid_to)
    assert after.fingerprint == before.fingerprint
