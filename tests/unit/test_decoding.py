"""Does decoding an ingest body refuse every structural problem, each with its JSON path?"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from inlet_bridge.domain import decoding
from inlet_bridge.domain.booking import BookingEvent, Problem
from inlet_bridge.domain.decoding import (
    MAX_PROBLEMS,
    NOT_JSON,
    decode_batch,
    decode_event,
    join_path,
    truncate_problems,
)

# The example of docs/contract.md section 1, with a real organizer in place of the placeholders.
CONTRACT_EXAMPLE: dict[str, Any] = {
    "event_id": "evt-000123",
    "source": "acme-pms",
    "occurred_at": "2026-11-22T10:00:00Z",
    "booking": {
        "booking_id": "R-1001",
        "property_id": "oslo-1",
        "booking_type": "private",
        "communication": "guest",
        "organizer": {"name": "Kari Nordmann", "email": "kari@example.no", "phone": "+4791234568"},
        "stays": [
            {
                "stay_id": "R-1001-1",
                "resource_id": "101",
                "arrival": "2026-11-23T15:00:00+01:00",
                "departure": "2026-11-25T11:00:00+01:00",
                "status": "confirmed",
                "guests": [
                    {"name": "Ola Nordmann", "email": "ola@example.no", "phone": "+4791234567"}
                ],
            }
        ],
    },
}

Key = str | int


def example() -> dict[str, Any]:
    """A fresh copy of the valid base event, safe to change."""
    return copy.deepcopy(CONTRACT_EXAMPLE)


def changed(*edits: tuple[tuple[Key, ...], Any]) -> dict[str, Any]:
    """The base event with each (path, value) set; the value `DELETE` removes the key."""
    body = example()
    for path, value in edits:
        parent: Any = body
        for key in path[:-1]:
            parent = parent[key]
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return body


DELETE = object()
STAY: tuple[Key, ...] = ("booking", "stays", 0)
GUEST: tuple[Key, ...] = (*STAY, "guests", 0)
ORGANIZER: tuple[Key, ...] = ("booking", "organizer")


def encode(body: Any) -> bytes:
    return msgspec.json.encode(body)


def problems_of(body: Any) -> list[Problem]:
    result = decode_event(encode(body))
    assert isinstance(result, list), "the body should have been refused"
    return result


def only_problem(body: Any) -> Problem:
    problems = problems_of(body)
    assert len(problems) == 1, problems
    return problems[0]


def test_contract_example_decodes_with_offsets_kept() -> None:
    event = decode_event(encode(example()))

    assert isinstance(event, BookingEvent)
    assert event.occurred_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    stay = event.booking.stays[0]
    assert stay.arrival == datetime(2026, 11, 23, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    assert stay.arrival.utcoffset() == timedelta(hours=1)
    assert stay.guests[0].phone == "+4791234567"
    assert event.booking.deleted is False


def test_optional_fields_may_be_left_out_or_null() -> None:
    body = changed(
        ((*STAY, "resource_id"), None),
        (("booking", "communication"), None),
        (ORGANIZER, None),
        ((*GUEST, "email"), None),
        ((*GUEST, "phone"), DELETE),
        ((*STAY, "status"), DELETE),
        (("booking", "booking_type"), DELETE),
    )

    event = decode_event(encode(body))

    assert isinstance(event, BookingEvent)
    assert event.booking.stays[0].resource_id is None
    assert event.booking.stays[0].status == "confirmed"
    assert event.booking.booking_type == "private"


def test_booking_without_stays_decodes() -> None:
    event = decode_event(
        encode(changed((("booking", "stays"), []), (("booking", "deleted"), True)))
    )

    assert isinstance(event, BookingEvent)
    assert event.booking.stays == ()
    assert event.booking.deleted is True


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"event_id": "a",}', b'{"a": 1} trailing', b"\xff\xfe"],
)
def test_invalid_json_is_one_problem_at_the_root(body: bytes) -> None:
    assert decode_event(body) == [Problem(path="", message=NOT_JSON)]
    assert decode_batch(body) == [Problem(path="", message=NOT_JSON)]


def test_broken_json_after_a_type_error_is_still_invalid_json() -> None:
    # msgspec stops at the first wrong type, before it would see that the body is cut off.
    assert decode_event(b'{"event_id": 5, "source": "a') == [Problem(path="", message=NOT_JSON)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "must be an object"),
        (b'"event"', "must be an object"),
        (b"42", "must be an object"),
        (b"null", "must not be null"),
    ],
)
def test_body_that_is_not_an_object(body: bytes, message: str) -> None:
    assert decode_event(body) == [Problem(path="", message=message)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("event_id",), "event_id"),
        (("source",), "source"),
        (("occurred_at",), "occurred_at"),
        (("booking",), "booking"),
        (("booking", "booking_id"), "booking.booking_id"),
        (("booking", "property_id"), "booking.property_id"),
        ((*STAY, "stay_id"), "booking.stays[0].stay_id"),
        ((*STAY, "arrival"), "booking.stays[0].arrival"),
        ((*STAY, "departure"), "booking.stays[0].departure"),
        ((*GUEST, "name"), "booking.stays[0].guests[0].name"),
        ((*ORGANIZER, "name"), "booking.organizer.name"),
    ],
)
def test_missing_required_field(path: tuple[Key, ...], expected: str) -> None:
    assert only_problem(changed((path, DELETE))) == Problem(path=expected, message="is required")


@pytest.mark.parametrize(
    ("parent", "expected"),
    [
        ((), "room"),
        (("booking",), "booking.room"),
        (ORGANIZER, "booking.organizer.room"),
        (STAY, "booking.stays[0].room"),
        (GUEST, "booking.stays[0].guests[0].room"),
    ],
)
def test_unknown_field_at_every_level(parent: tuple[Key, ...], expected: str) -> None:
    problem = only_problem(changed(((*parent, "room"), "101")))

    assert problem == Problem(path=expected, message="is not a known field")


def test_unknown_key_that_is_not_a_plain_name_is_quoted_and_bounded() -> None:
    long_key = "x" * 500
    body = changed((("booking", "room number"), 1), (("booking", long_key), 1))

    paths = [p.path for p in problems_of(body)]

    assert paths == ['booking["room number"]', 'booking["' + "x" * 64 + '..."]']
    assert join_path("booking", "a b" + "y" * 500) == 'booking["a b' + "y" * 61 + '..."]'
    assert join_path("", "room") == "room"
    assert join_path("", "room 1") == '["room 1"]'


@pytest.mark.parametrize(
    ("path", "value", "expected", "fragment"),
    [
        (("event_id",), 5, "event_id", "must be a string"),
        (("source",), ["acme"], "source", "must be a string"),
        (("booking",), "R-1001", "booking", "must be an object"),
        (("booking",), None, "booking", "must not be null"),
        (("booking", "booking_id"), None, "booking.booking_id", "must not be null"),
        (("booking", "stays"), {"stay_id": "x"}, "booking.stays", "must be an array"),
        (("booking", "deleted"), "yes", "booking.deleted", "must be true or false"),
        (("booking", "deleted"), 1, "booking.deleted", "must be true or false"),
        ((*STAY, "guests", 0), "Ola", "booking.stays[0].guests[0]", "must be an object"),
        ((*STAY, "resource_id"), 101, "booking.stays[0].resource_id", "must be a string"),
        ((*STAY, "arrival"), 1795000000, "booking.stays[0].arrival", "timestamp string"),
        ((*GUEST, "phone"), 4791234567, "booking.stays[0].guests[0].phone", "must be a string"),
        ((*GUEST, "email"), True, "booking.stays[0].guests[0].email", "must be a string"),
        (ORGANIZER, "Kari", "booking.organizer", "must be an object"),
    ],
)
def test_wrong_type(path: tuple[Key, ...], value: Any, expected: str, fragment: str) -> None:
    problem = only_problem(changed((path, value)))

    assert problem.path == expected
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("path", "value", "expected", "fragment"),
    [
        (("booking", "booking_type"), "corporate", "booking.booking_type", "private"),
        (("booking", "booking_type"), "Private", "booking.booking_type", "must be one of"),
        (("booking", "communication"), "sms", "booking.communication", "organizer"),
        ((*STAY, "status"), "checkedin", "booking.stays[0].status", "checked_in"),
        ((*STAY, "status"), 1, "booking.stays[0].status", "must be one of"),
    ],
)
def test_bad_enum_value(path: tuple[Key, ...], value: Any, expected: str, fragment: str) -> None:
    problem = only_problem(changed((path, value)))

    assert problem.path == expected
    assert fragment in problem.message
    assert "must be one of" in problem.message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("occurred_at",), "occurred_at"),
        ((*STAY, "arrival"), "booking.stays[0].arrival"),
        ((*STAY, "departure"), "booking.stays[0].departure"),
    ],
)
def test_naive_timestamp_is_refused(path: tuple[Key, ...], expected: str) -> None:
    problem = only_problem(changed((path, "2026-11-23T15:00:00")))

    assert problem.path == expected
    assert "must include a UTC offset" in problem.message


@pytest.mark.parametrize(
    "value", ["2026-13-01T00:00:00Z", "23.11.2026 15:00", "tomorrow", "", "2026-11-23T25:00:00Z"]
)
def test_unparseable_timestamp_is_refused(value: str) -> None:
    problem = only_problem(changed(((*STAY, "arrival"), value)))

    assert problem.path == "booking.stays[0].arrival"
    assert "is not an RFC 3339 timestamp" in problem.message


@pytest.mark.parametrize(
    ("path", "value", "expected", "fragment"),
    [
        (("event_id",), "", "event_id", "must not be empty"),
        (("source",), "", "source", "must not be empty"),
        (("event_id",), "e" * 129, "event_id", "at most 128 characters"),
        (("booking", "booking_id"), "", "booking.booking_id", "must not be empty"),
        (("booking", "property_id"), "p" * 129, "booking.property_id", "at most 128"),
        ((*STAY, "stay_id"), "", "booking.stays[0].stay_id", "must not be empty"),
        ((*STAY, "resource_id"), "", "booking.stays[0].resource_id", "must not be empty"),
        ((*GUEST, "name"), "", "booking.stays[0].guests[0].name", "must not be empty"),
        ((*GUEST, "name"), "n" * 201, "booking.stays[0].guests[0].name", "at most 200"),
        ((*GUEST, "email"), "e" * 255, "booking.stays[0].guests[0].email", "at most 254"),
        ((*GUEST, "phone"), "1" * 33, "booking.stays[0].guests[0].phone", "at most 32"),
        (("booking", "company"), "c" * 201, "booking.company", "at most 200 characters"),
    ],
)
def test_string_length(path: tuple[Key, ...], value: str, expected: str, fragment: str) -> None:
    problem = only_problem(changed((path, value)))

    assert problem.path == expected
    assert fragment in problem.message


def test_longest_allowed_strings_decode() -> None:
    body = changed((("event_id",), "e" * 128), ((*GUEST, "name"), "n" * 200))

    assert isinstance(decode_event(encode(body)), BookingEvent)


@pytest.mark.parametrize(
    ("path", "count", "expected", "fragment"),
    [
        ((*STAY, "guests"), 51, "booking.stays[0].guests", "at most 50 items"),
        (("booking", "stays"), 201, "booking.stays", "at most 200 items"),
    ],
)
def test_too_many_items(path: tuple[Key, ...], count: int, expected: str, fragment: str) -> None:
    item = changed()
    for key in path:
        item = item[key]
    body = changed((path, [copy.deepcopy(item[0]) for _ in range(count)]))

    assert only_problem(body) == Problem(path=expected, message=f"must have {fragment}")


def test_every_problem_of_a_body_is_listed() -> None:
    body = changed(
        (("event_id",), 17),
        (("source",), DELETE),
        (("occurred_at",), "2026-11-22T10:00:00"),
        (("trace",), "abc"),
        (("booking", "booking_type"), "corporate"),
        (("booking", "deleted"), "no"),
        ((*STAY, "departure"), None),
        ((*STAY, "floor"), 3),
        ((*GUEST, "name"), ""),
    )
    guest = copy.deepcopy(body["booking"]["stays"][0]["guests"][0])
    guest["email"] = ["ola@example.no"]
    body["booking"]["stays"][0]["guests"].append(guest)

    assert problems_of(body) == [
        Problem(path="event_id", message="must be a string"),
        Problem(path="source", message="is required"),
        Problem(
            path="occurred_at", message=f"must include a UTC offset, {decoding.OFFSET_EXAMPLE}"
        ),
        Problem(
            path="booking.booking_type", message="must be one of: agency, company, group, private"
        ),
        Problem(path="booking.stays[0].departure", message="must not be null"),
        Problem(path="booking.stays[0].guests[0].name", message="must not be empty"),
        Problem(path="booking.stays[0].guests[1].name", message="must not be empty"),
        Problem(path="booking.stays[0].guests[1].email", message="must be a string"),
        Problem(path="booking.stays[0].floor", message="is not a known field"),
        Problem(path="booking.deleted", message="must be true or false"),
        Problem(path="trace", message="is not a known field"),
    ]


def test_problem_list_is_bounded() -> None:
    stay = example()["booking"]["stays"][0]
    body = changed((("booking", "stays"), [{**stay, "floor": i} for i in range(150)]))

    problems = problems_of(body)

    assert len(problems) == MAX_PROBLEMS
    assert problems[0] == Problem(path="booking.stays[0].floor", message="is not a known field")
    assert problems[-1] == Problem(path="", message="51 more problems not listed")


def test_truncate_keeps_short_lists_untouched() -> None:
    problems = [Problem(path="a", message="m")] * 3

    assert truncate_problems(problems, limit=3) is problems
    assert truncate_problems(problems, limit=2) == [
        Problem(path="a", message="m"),
        Problem(path="", message="2 more problems not listed"),
    ]


def test_truncated_warnings_say_warnings() -> None:
    warnings = [Problem(path=f"w{i}", message="m") for i in range(4)]

    assert truncate_problems(warnings, limit=3, what="warnings") == [
        *warnings[:2],
        Problem(path="", message="2 more warnings not listed"),
    ]


def test_refusal_falls_back_to_msgspec_when_the_walk_finds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guards the promise that a body msgspec refuses is never accepted by accident.
    monkeypatch.setattr(decoding, "_walk", lambda *_: None)

    problems = problems_of(changed(((*STAY, "arrival"), "2026-11-23T15:00:00")))

    assert len(problems) == 1
    assert problems[0].path == "booking.stays[0].arrival"
    assert "timezone" in problems[0].message


def test_walk_understands_every_kind_of_type_in_the_wire_model() -> None:
    handled = (
        msgspec.inspect.StructType,
        msgspec.inspect.UnionType,
        msgspec.inspect.NoneType,
        msgspec.inspect.StrType,
        msgspec.inspect.DateTimeType,
        msgspec.inspect.LiteralType,
        msgspec.inspect.BoolType,
        msgspec.inspect.VarTupleType,
        msgspec.inspect.ListType,
        msgspec.inspect.Metadata,
    )
    seen: list[msgspec.inspect.Type] = []

    def visit(info: msgspec.inspect.Type) -> None:
        seen.append(info)
        if isinstance(info, msgspec.inspect.StructType):
            for field in info.fields:
                visit(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                visit(member)
        elif isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
            visit(info.item_type)
        elif isinstance(info, msgspec.inspect.Metadata):
            visit(info.type)

    visit(msgspec.inspect.type_info(decoding.EventBatch))

    unhandled = [type(info).__name__ for info in seen if not isinstance(info, handled)]
    assert unhandled == []
    assert any(isinstance(info, msgspec.inspect.DateTimeType) for info in seen)


# Batches


def batch(count: int) -> dict[str, Any]:
    events = []
    for i in range(count):
        event = example()
        event["event_id"] = f"evt-{i}"
        events.append(event)
    return {"events": events}


def test_batch_decodes_in_order() -> None:
    events = decode_batch(encode(batch(3)))

    assert isinstance(events, tuple)
    assert [e.event_id for e in events] == ["evt-0", "evt-1", "evt-2"]


def test_batch_of_500_is_accepted_and_501_refused() -> None:
    accepted = decode_batch(encode(batch(500)))
    refused = decode_batch(encode(batch(501)))

    assert isinstance(accepted, tuple)
    assert len(accepted) == 500
    assert refused == [Problem(path="events", message="must have at most 500 items")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"events": []}, [Problem(path="events", message="must have at least 1 item")]),
        ({}, [Problem(path="events", message="is required")]),
        ({"events": None}, [Problem(path="events", message="must not be null")]),
        ({"events": {}}, [Problem(path="events", message="must be an array")]),
        (
            {**batch(1), "source": "acme-pms"},
            [Problem(path="source", message="is not a known field")],
        ),
        ([], [Problem(path="", message="must be an object")]),
    ],
)
def test_batch_shape(body: Any, expected: list[Problem]) -> None:
    assert decode_batch(encode(body)) == expected


def test_batch_problems_are_under_the_event_index() -> None:
    body = batch(5)
    body["events"][3]["booking"]["stays"][0]["arrival"] = "2026-11-23T15:00:00"
    body["events"][4]["booking"]["stays"][0]["guests"][0]["age"] = 40

    problems = decode_batch(encode(body))

    assert isinstance(problems, list)
    assert [p.path for p in problems] == [
        "events[3].booking.stays[0].arrival",
        "events[4].booking.stays[0].guests[0].age",
    ]
    assert "UTC offset" in problems[0].message
    assert problems[1].message == "is not a known field"


def test_a_single_event_body_is_not_a_batch() -> None:
    assert decode_batch(encode(example()))[0] == Problem(path="events", message="is required")
