"""Does semantic validation refuse bad IDs, dates and names, drop bad contact details with a
warning instead of refusing, and normalize good ones?"""

from __future__ import annotations

import copy
import socket
from datetime import datetime
from typing import Any

import msgspec
import pytest

from inlet_bridge.domain.booking import BookingEvent, Contact, Problem
from inlet_bridge.domain.decoding import MAX_PROBLEMS, decode_event
from inlet_bridge.domain.validation import (
    ID_RULE,
    InvalidEvent,
    ValidEvent,
    _contact_verdict,
    clean_text,
    validate_batch,
    validate_event,
)
from tests.unit.test_decoding import DELETE, GUEST, ORGANIZER, STAY, Key, changed, example

GUEST_PATH = "booking.stays[0].guests[0]"


def event_of(body: dict[str, Any]) -> BookingEvent:
    event = decode_event(msgspec.json.encode(body))
    assert isinstance(event, BookingEvent), event
    return event


def problems_of(body: dict[str, Any]) -> tuple[Problem, ...]:
    result = validate_event(event_of(body))
    assert isinstance(result, InvalidEvent), "the event should have been refused"
    return result.problems


def only_problem(body: dict[str, Any]) -> Problem:
    problems = problems_of(body)
    assert len(problems) == 1, problems
    return problems[0]


def accepted(body: dict[str, Any]) -> ValidEvent:
    result = validate_event(event_of(body))
    assert isinstance(result, ValidEvent), result
    return result


def valid(body: dict[str, Any]) -> BookingEvent:
    result = accepted(body)
    assert result.warnings == (), result.warnings
    return result.event


def only_warning(body: dict[str, Any]) -> tuple[Problem, BookingEvent]:
    result = accepted(body)
    assert len(result.warnings) == 1, result.warnings
    return result.warnings[0], result.event


def test_contract_example_is_valid_and_unchanged() -> None:
    event = event_of(example())

    result = validate_event(event)

    assert isinstance(result, ValidEvent)
    assert (result.warnings, result.dropped_digest) == ((), b"")
    # the same content, as the domain's own Struct (the wire type is only how it arrived)
    assert msgspec.json.encode(result.event) == msgspec.json.encode(event)
    assert type(result.event) is BookingEvent


def test_valid_event_comes_back_normalized() -> None:
    body = changed(
        ((*GUEST, "name"), "  <b>Ola</b>\n\tNordmann\x00 "),
        ((*GUEST, "email"), " Ola.Nordmann@Example.NO "),
        ((*GUEST, "phone"), "+47 912 34 567"),
        ((*ORGANIZER, "phone"), "+1 (650) 253-0000"),
        ((*ORGANIZER, "name"), "Kari &amp; Per"),
        (("booking", "company"), "Acme <i>Travel</i>  AS"),
    )

    event = valid(body)

    guest = event.booking.stays[0].guests[0]
    assert guest == Contact(
        name="Ola Nordmann", email="Ola.Nordmann@example.no", phone="+4791234567"
    )
    assert event.booking.organizer == Contact(
        name="Kari & Per", email="kari@example.no", phone="+16502530000"
    )
    assert event.booking.company == "Acme Travel AS"
    # Everything that needs no cleaning is kept as it came.
    assert event.booking.stays[0].arrival == event_of(body).booking.stays[0].arrival
    assert event.event_id == "evt-000123"


# Emails


@pytest.mark.parametrize(
    "email",
    [
        "ola",
        "ola@",
        "@example.no",
        "ola@example",
        "ola@@example.no",
        "ola@exa mple.no",
        "Ola Nordmann <ola@example.no>",
        "ola@example.invalid",
        "ola..nordmann@example.no",
        "ola@-example.no",
    ],
)
@pytest.mark.parametrize("where", [GUEST, ORGANIZER])
def test_invalid_email_is_dropped_with_a_warning(email: str, where: tuple[Key, ...]) -> None:
    body = changed(((*where, "email"), email))
    warning, event = only_warning(body)

    expected = GUEST_PATH if where == GUEST else "booking.organizer"
    assert warning == Problem(path=f"{expected}.email", message="is not a valid email address")
    contact = event.booking.organizer if where == ORGANIZER else event.booking.stays[0].guests[0]
    as_sent = event_of(body).booking
    sent = as_sent.organizer if where == ORGANIZER else as_sent.stays[0].guests[0]
    assert sent is not None
    # Only the email goes: the name and the phone are kept.
    assert contact == Contact(name=sent.name, email=None, phone=sent.phone)


@pytest.mark.parametrize("email", ["", "   "])
def test_empty_email_is_dropped_asking_for_null(email: str) -> None:
    warning, event = only_warning(changed(((*GUEST, "email"), email)))

    assert warning.path == f"{GUEST_PATH}.email"
    assert "leave it out or send null" in warning.message
    assert event.booking.stays[0].guests[0].email is None


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        ("ola@example.no", "ola@example.no"),
        ("OLA@EXAMPLE.NO", "OLA@example.no"),
        ("  ola@example.no\n", "ola@example.no"),
        ("åse@blåbær.no", "åse@blåbær.no"),
        ("ola+booking@example.co.uk", "ola+booking@example.co.uk"),
    ],
)
def test_valid_email_is_normalized(email: str, normalized: str) -> None:
    event = valid(changed(((*GUEST, "email"), email)))

    assert event.booking.stays[0].guests[0].email == normalized


# Phones


@pytest.mark.parametrize(
    ("phone", "fragment"),
    [
        ("91234567", "must include the country code, e.g. +4791234567"),
        ("004791234567", "must include the country code"),
        ("47 91 23 45 67", "must include the country code"),
        ("+47 123", "is not a valid phone number"),
        ("+4712345678", "is not a valid phone number"),
        ("+999 1234567", "is not a valid phone number"),
        ("+47abc", "is not a valid phone number"),
        ("+", "is not a valid phone number"),
        ("", "leave it out or send null"),
    ],
)
@pytest.mark.parametrize("where", [GUEST, ORGANIZER])
def test_invalid_phone_is_dropped_with_a_warning(
    phone: str, fragment: str, where: tuple[Key, ...]
) -> None:
    warning, event = only_warning(changed(((*where, "phone"), phone)))

    expected = GUEST_PATH if where == GUEST else "booking.organizer"
    assert warning.path == f"{expected}.phone"
    assert fragment in warning.message
    contact = event.booking.organizer if where == ORGANIZER else event.booking.stays[0].guests[0]
    assert contact is not None
    assert contact.phone is None
    assert contact.email is not None  # the valid email stays


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("+4791234567", "+4791234567"),
        ("+47 912 34 567", "+4791234567"),
        ("+47-912-34-567", "+4791234567"),
        (" +46 70 123 45 67 ", "+46701234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (650) 253-0000", "+16502530000"),
    ],
)
def test_valid_phone_is_stored_as_e164(phone: str, e164: str) -> None:
    event = valid(changed(((*GUEST, "phone"), phone)))

    assert event.booking.stays[0].guests[0].phone == e164


# Text


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Ola Nordmann", "Ola Nordmann"),
        ("  Ola \n\t Nordmann  ", "Ola Nordmann"),
        ("<b>Ola</b> Nordmann", "Ola Nordmann"),
        ("Ola<br/>Nordmann", "Ola Nordmann"),
        ("Ola <script>alert('x')</script>Nordmann", "Ola Nordmann"),
        ("Ola <SCRIPT type='text/javascript'>alert(1)</SCRIPT >Nordmann", "Ola Nordmann"),
        ("Ola <style>b{color:red}</style>Nordmann", "Ola Nordmann"),
        ("Ola <script>alert(1)", "Ola"),
        ("Ola <!-- note -->Nordmann", "Ola Nordmann"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Ola", "Ola"),
        ("Smith &amp; Sons", "Smith & Sons"),
        ("Ola\x00Nord\x07mann", "OlaNordmann"),
        ("Ola\u202eNordmann\u200b", "OlaNordmann"),
        ("Ola > Kari < Per", "Ola Kari Per"),
        ("Ola\u00a0Nordmann", "Ola Nordmann"),
        ("Ze\u0301", "Zé"),
        ("Åse Bjørnstad-Ødegård", "Åse Bjørnstad-Ødegård"),
        ("O'Brien", "O'Brien"),
        ("\U0001f468\u200d\U0001f469", "\U0001f468\u200d\U0001f469"),
    ],
)
def test_clean_text(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", "<b></b>", "\x00\x01", " \u200b ", "<img src=x>"]
)
@pytest.mark.parametrize(
    ("where", "expected"),
    [((*GUEST, "name"), f"{GUEST_PATH}.name"), ((*ORGANIZER, "name"), "booking.organizer.name")],
)
def test_name_empty_after_cleaning(name: str, where: tuple[Key, ...], expected: str) -> None:
    problem = only_problem(changed((where, name)))

    assert problem.path == expected
    assert "is empty once markup and control characters are removed" in problem.message


@pytest.mark.parametrize("company", ["", " ", "<p></p>"])
def test_company_empty_after_cleaning(company: str) -> None:
    problem = only_problem(changed((("booking", "company"), company)))

    assert problem.path == "booking.company"
    assert "is empty" in problem.message


def test_name_too_long_in_an_event_built_in_code() -> None:
    event = event_of(example())
    guest = msgspec.structs.replace(event.booking.stays[0].guests[0], name="n" * 201)
    stay = msgspec.structs.replace(event.booking.stays[0], guests=(guest,))
    event = msgspec.structs.replace(
        event, booking=msgspec.structs.replace(event.booking, stays=(stay,))
    )

    assert validate_event(event) == InvalidEvent(
        problems=(Problem(path=f"{GUEST_PATH}.name", message="must be at most 200 characters"),)
    )


# IDs

ID_FIELDS = [
    (("event_id",), "event_id"),
    (("source",), "source"),
    (("booking", "booking_id"), "booking.booking_id"),
    (("booking", "property_id"), "booking.property_id"),
    ((*STAY, "stay_id"), "booking.stays[0].stay_id"),
    ((*STAY, "resource_id"), "booking.stays[0].resource_id"),
]


@pytest.mark.parametrize(("path", "expected"), ID_FIELDS)
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("acme:R-1001", "must not contain ':'"),
        ("-R1001", ID_RULE),
        (".hidden", ID_RULE),
        ("R 1001", ID_RULE),
        ("R-1001 ", ID_RULE),
        ("rom-å", ID_RULE),
        ("R-1001\n", ID_RULE),
        ("R<1001>", ID_RULE),
    ],
)
def test_bad_id(path: tuple[Key, ...], expected: str, value: str, fragment: str) -> None:
    problem = only_problem(changed((path, value)))

    assert problem.path == expected
    assert fragment in problem.message


@pytest.mark.parametrize(("path", "expected"), ID_FIELDS)
@pytest.mark.parametrize("value", ["R-1001/2", "a.b_c@d+e#f-g", "7", "X" * 128])
def test_good_id(path: tuple[Key, ...], expected: str, value: str) -> None:
    event: Any = msgspec.to_builtins(valid(changed((path, value))))
    for key in path:
        event = event[key]

    assert event == value


def test_id_length_is_checked_for_events_built_in_code() -> None:
    event = msgspec.structs.replace(event_of(example()), event_id="e" * 129, source="")

    assert validate_event(event) == InvalidEvent(
        problems=(
            Problem(path="event_id", message="must be at most 128 characters"),
            Problem(path="source", message="must not be empty"),
        )
    )


# Stays


def stays(*periods: tuple[str, str], ids: tuple[str, ...] = ()) -> dict[str, Any]:
    template = example()["booking"]["stays"][0]
    lines = []
    for index, (arrival, departure) in enumerate(periods):
        line = copy.deepcopy(template)
        line.update(arrival=arrival, departure=departure)
        line["stay_id"] = ids[index] if ids else f"R-1001-{index + 1}"
        lines.append(line)
    return changed((("booking", "stays"), lines))


@pytest.mark.parametrize(
    ("arrival", "departure", "fragment"),
    [
        ("2026-11-25T11:00:00+01:00", "2026-11-23T15:00:00+01:00", "must be after arrival"),
        ("2026-11-23T15:00:00+01:00", "2026-11-23T15:00:00+01:00", "must be after arrival"),
        # The same instant written in two offsets is still not after.
        ("2026-11-23T15:00:00+01:00", "2026-11-23T14:00:00Z", "must be after arrival"),
        ("2026-01-01T15:00:00+01:00", "2027-01-03T11:00:00+01:00", "longer than 366 days"),
    ],
)
def test_bad_stay_period(arrival: str, departure: str, fragment: str) -> None:
    problem = only_problem(stays((arrival, departure)))

    assert problem.path == "booking.stays[0].departure"
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("arrival", "departure"),
    [
        ("2026-11-23T15:00:00+01:00", "2026-11-23T14:01:00Z"),
        ("2026-11-23T15:00:00+01:00", "2026-11-23T15:30:00+01:00"),
        ("2026-01-01T15:00:00+01:00", "2027-01-02T15:00:00+01:00"),
    ],
)
def test_good_stay_period(arrival: str, departure: str) -> None:
    event = valid(stays((arrival, departure)))

    assert event.booking.stays[0].departure == datetime.fromisoformat(departure)


def test_stay_ids_are_unique_within_a_booking() -> None:
    period = ("2026-11-23T15:00:00+01:00", "2026-11-25T11:00:00+01:00")
    body = stays(period, period, period, ids=("A", "B", "A"))

    assert problems_of(body) == (
        Problem(path="booking.stays[2].stay_id", message="repeats the stay_id of booking.stays[0]"),
    )


@pytest.mark.parametrize("deleted", [True, False])
def test_booking_without_stays_is_valid(deleted: bool) -> None:
    event = valid(changed((("booking", "stays"), []), (("booking", "deleted"), deleted)))

    assert event.booking.stays == ()


def test_naive_datetimes_built_in_code_are_refused_without_crashing() -> None:
    event = event_of(example())
    stay = msgspec.structs.replace(
        event.booking.stays[0], arrival=datetime(2026, 11, 23, 15), departure=datetime(2026, 11, 25)
    )
    event = msgspec.structs.replace(
        event,
        occurred_at=datetime(2026, 11, 22, 10),
        booking=msgspec.structs.replace(event.booking, stays=(stay,)),
    )

    result = validate_event(event)

    assert isinstance(result, InvalidEvent)
    problems = result.problems
    assert [p.path for p in problems] == [
        "occurred_at",
        "booking.stays[0].arrival",
        "booking.stays[0].departure",
    ]
    assert all("must include a UTC offset" in p.message for p in problems)


# Communication


def test_communication_organizer_requires_an_organizer() -> None:
    body = changed((("booking", "communication"), "organizer"), (ORGANIZER, None))

    assert problems_of(body) == (
        Problem(path="booking.organizer", message="is required when communication is organizer"),
    )


@pytest.mark.parametrize("communication", ["guest", "none", None])
def test_other_communication_needs_no_organizer(communication: str | None) -> None:
    body = changed((("booking", "communication"), communication), (ORGANIZER, DELETE))

    assert valid(body).booking.organizer is None


def test_communication_organizer_with_an_organizer_is_valid() -> None:
    body = changed(
        (("booking", "communication"), "organizer"), (("booking", "booking_type"), "group")
    )

    assert valid(body).booking.communication == "organizer"


# All problems at once, and never the personal value


def test_every_problem_of_an_event_is_listed_with_what_would_be_dropped() -> None:
    body = changed(
        (("source",), "acme:pms"),
        (("booking", "communication"), "organizer"),
        (ORGANIZER, None),
        ((*STAY, "departure"), "2026-11-22T11:00:00+01:00"),
        ((*GUEST, "name"), "<script>x</script>"),
        ((*GUEST, "email"), "ola@example"),
        ((*GUEST, "phone"), "91234567"),
    )

    assert validate_event(event_of(body)) == InvalidEvent(
        problems=(
            Problem(path="source", message="must not contain ':' (it separates grant key parts)"),
            Problem(
                path="booking.organizer", message="is required when communication is organizer"
            ),
            Problem(path="booking.stays[0].departure", message="must be after arrival"),
            Problem(
                path=f"{GUEST_PATH}.name",
                message="is empty once markup and control characters are removed",
            ),
        ),
        warnings=(
            Problem(path=f"{GUEST_PATH}.email", message="is not a valid email address"),
            Problem(
                path=f"{GUEST_PATH}.phone",
                message="must include the country code, e.g. +4791234567",
            ),
        ),
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "kari.secret@example"),
        ("email", "Kari Hansen <kari.secret@example.no>"),
        ("phone", "98765432"),
        ("phone", "+47 98765"),
        ("phone", "+479876543210"),
    ],
)
def test_messages_never_repeat_the_rejected_value(field: str, value: str) -> None:
    warning, event = only_warning(changed(((*GUEST, field), value)))

    assert warning.path == f"{GUEST_PATH}.{field}"
    for part in (value, value.strip("+"), "kari", "98765"):
        assert part not in warning.message
    # ... nor is the value stored anywhere in the normalized event.
    assert value.strip("+") not in msgspec.json.encode(event).decode()


# Batches


def test_batch_of_valid_events_is_normalized_in_order_each_with_its_warnings() -> None:
    first = event_of(changed((("event_id",), "evt-1"), ((*GUEST, "phone"), "+47 912 34 567")))
    second = event_of(changed((("event_id",), "evt-2"), ((*GUEST, "phone"), "91234567")))

    result = validate_batch([first, second])

    assert isinstance(result, tuple)
    assert [v.event.event_id for v in result] == ["evt-1", "evt-2"]
    assert result[0].event.booking.stays[0].guests[0].phone == "+4791234567"
    assert result[0].warnings == ()
    # A valid event's warnings are relative to that event: its answer carries them.
    assert result[1].warnings == (
        Problem(
            path=f"{GUEST_PATH}.phone", message="must include the country code, e.g. +4791234567"
        ),
    )
    assert result[1].event.booking.stays[0].guests[0].phone is None


def test_batch_with_one_bad_event_refuses_all_under_its_index() -> None:
    good = event_of(example())
    dropped = event_of(changed(((*GUEST, "email"), "ola@")))
    bad = event_of(changed(((*GUEST, "phone"), "91234567"), (("booking", "booking_id"), "a:b")))

    assert validate_batch([good, dropped, bad]) == InvalidEvent(
        problems=(
            Problem(
                path="events[2].booking.booking_id",
                message="must not contain ':' (it separates grant key parts)",
            ),
        ),
        warnings=(
            Problem(path=f"events[1].{GUEST_PATH}.email", message="is not a valid email address"),
            Problem(
                path=f"events[2].{GUEST_PATH}.phone",
                message="must include the country code, e.g. +4791234567",
            ),
        ),
    )


def test_empty_batch_validates_to_nothing() -> None:
    assert validate_batch([]) == ()


def test_validation_does_not_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("validation opened a socket")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    event = event_of(changed(((*GUEST, "email"), "ola@gmail.com")))

    assert isinstance(validate_event(event), ValidEvent)


# Warnings or problems: contact details never block access, everything else refuses

WARNING, PROBLEM = "warning", "problem"


@pytest.mark.parametrize(
    ("edit", "path", "kind"),
    [
        # an email or phone that fails its check: dropped, the event goes on
        (((*GUEST, "email"), "ola.example.no"), f"{GUEST_PATH}.email", WARNING),
        (((*GUEST, "email"), ""), f"{GUEST_PATH}.email", WARNING),
        (((*GUEST, "phone"), "91234567"), f"{GUEST_PATH}.phone", WARNING),
        (((*GUEST, "phone"), "+47 123"), f"{GUEST_PATH}.phone", WARNING),
        (((*GUEST, "phone"), " "), f"{GUEST_PATH}.phone", WARNING),
        (((*ORGANIZER, "email"), "kari@"), "booking.organizer.email", WARNING),
        (((*ORGANIZER, "phone"), "004791234568"), "booking.organizer.phone", WARNING),
        # everything else: the event is refused
        (((*GUEST, "name"), "<b></b>"), f"{GUEST_PATH}.name", PROBLEM),
        (((*ORGANIZER, "name"), "\x00"), "booking.organizer.name", PROBLEM),
        ((("event_id",), "evt:1"), "event_id", PROBLEM),
        ((("booking", "booking_id"), "R 1001"), "booking.booking_id", PROBLEM),
        (((*STAY, "resource_id"), "-101"), "booking.stays[0].resource_id", PROBLEM),
        (
            ((*STAY, "departure"), "2026-11-23T15:00:00+01:00"),
            "booking.stays[0].departure",
            PROBLEM,
        ),
        ((("booking", "company"), "<p></p>"), "booking.company", PROBLEM),
        ((ORGANIZER, None), "booking.organizer", PROBLEM),
    ],
)
def test_which_findings_are_warnings_and_which_refuse(
    edit: tuple[tuple[Key, ...], Any], path: str, kind: str
) -> None:
    edits = [edit]
    if path == "booking.organizer":
        edits.append((("booking", "communication"), "organizer"))
    result = validate_event(event_of(changed(*edits)))

    if kind == WARNING:
        assert isinstance(result, ValidEvent)
        assert [w.path for w in result.warnings] == [path]
    else:
        assert isinstance(result, InvalidEvent)
        assert [p.path for p in result.problems] == [path]
        assert result.warnings == ()


def test_a_contact_may_lose_both_email_and_phone_and_keep_its_name() -> None:
    body = changed(((*GUEST, "email"), "ola@"), ((*GUEST, "phone"), "91234567"))

    result = accepted(body)

    assert result.event.booking.stays[0].guests[0] == Contact(name="Ola Nordmann")
    assert [w.path for w in result.warnings] == [f"{GUEST_PATH}.email", f"{GUEST_PATH}.phone"]


def test_an_organizer_without_valid_contact_details_does_not_refuse_the_event() -> None:
    body = changed(
        (("booking", "communication"), "organizer"),
        ((*ORGANIZER, "email"), "kari@example"),
        ((*ORGANIZER, "phone"), "91234568"),
    )

    result = accepted(body)

    assert result.event.booking.organizer == Contact(name="Kari Nordmann")
    assert [w.path for w in result.warnings] == [
        "booking.organizer.email",
        "booking.organizer.phone",
    ]


def test_a_cancellation_with_a_bad_phone_is_accepted_as_a_cancellation() -> None:
    body = changed(((*STAY, "status"), "cancelled"), ((*GUEST, "phone"), "91234567"))

    warning, event = only_warning(body)

    assert event.booking.stays[0].status == "cancelled"
    assert warning.path == f"{GUEST_PATH}.phone"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("91234567", "91234567", True),  # a repeat
        ("91234567", "91234568", False),  # another bad value under the same path
        ("91234567", "", False),
        ("+47 123", "+47 124", False),
    ],
)
def test_dropped_values_are_fingerprinted_not_kept(first: str, second: str, same: bool) -> None:
    one = accepted(changed(((*GUEST, "phone"), first)))
    two = accepted(changed(((*GUEST, "phone"), second)))

    assert one.event == two.event  # both normalize to the guest without a phone
    assert (one.dropped_digest == two.dropped_digest) is same
    assert first.encode() not in one.dropped_digest


def test_nothing_dropped_gives_an_empty_fingerprint() -> None:
    assert accepted(example()).dropped_digest == b""
    without = accepted(changed(((*GUEST, "phone"), DELETE)))
    dropped = accepted(changed(((*GUEST, "phone"), "91234567")))
    # The same normalized event, but a bad phone is not the same body as no phone.
    assert without.event == dropped.event
    assert without.dropped_digest != dropped.dropped_digest


def test_warnings_are_cut_short_like_problems() -> None:
    template = example()["booking"]["stays"][0]
    bad_guests = [{"name": f"Guest {i}", "phone": "91234567"} for i in range(50)]
    lines = [{**template, "stay_id": f"S{i}", "guests": bad_guests} for i in range(3)]

    result = accepted(changed((("booking", "stays"), lines)))

    assert len(result.warnings) == MAX_PROBLEMS
    assert result.warnings[-1] == Problem(path="", message="51 more warnings not listed")
    assert all(g.phone is None for s in result.event.booking.stays for g in s.guests)


# Contacts repeat in every event of a booking: their verdicts are memoized by value


CONTACTS = [
    {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"},
    {"name": "Ola Nordmann", "email": "Ola@Example.no", "phone": "+4791234567"},
    {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234568"},
    {"name": "Ola  <b>Nordmann</b>", "email": "ola@example.no", "phone": "+4791234567"},
    {"name": "Ola Nordmann", "email": "ola@example", "phone": "91234567"},
    {"name": "<script>x</script>", "email": None, "phone": None},
    {"name": "Kari Nordmann", "email": "ola@example.no", "phone": "+4791234567"},
]


def with_contact(contact: dict[str, Any]) -> dict[str, Any]:
    """The example with `contact` as its first guest and as the organizer."""
    return changed((GUEST, contact), (ORGANIZER, contact))


def test_a_memoized_contact_verdict_is_never_given_to_another_contact() -> None:
    """Contacts that differ in one value, validated in turn many times, each come out as they
    do with nothing memoized; the same contact at two paths is reported at each path."""
    _contact_verdict.cache_clear()
    fresh = []
    for contact in CONTACTS:
        fresh.append(validate_event(event_of(with_contact(contact))))
        _contact_verdict.cache_clear()
    for _ in range(3):
        for contact, expected in zip(CONTACTS, fresh, strict=True):
            assert validate_event(event_of(with_contact(contact))) == expected
    assert _contact_verdict.cache_info().hits >= 2 * len(CONTACTS) * 3 - len(CONTACTS)
    # the cleaned values differ where the inputs differ, and the paths are each event's own
    emails = [r.event.booking.organizer.email for r in fresh[:3] if isinstance(r, ValidEvent)]
    assert emails == ["ola@example.no", "Ola@example.no", "ola@example.no"]
    dropped = fresh[4]
    assert isinstance(dropped, ValidEvent)
    assert [w.path for w in dropped.warnings] == [
        "booking.organizer.email",
        "booking.organizer.phone",
        f"{GUEST_PATH}.email",
        f"{GUEST_PATH}.phone",
    ]
    refused = fresh[5]
    assert isinstance(refused, InvalidEvent)
    assert [p.path for p in refused.problems] == ["booking.organizer.name", f"{GUEST_PATH}.name"]


def test_the_memo_of_contact_verdicts_is_bounded() -> None:
    assert _contact_verdict.cache_info().maxsize == 8192
