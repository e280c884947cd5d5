"""Is a booking's current state the fold of its events: latest wins, order of arrival irrelevant?"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from inlet_bridge.domain.booking import Booking
from inlet_bridge.domain.fold import BookingState, LoggedEvent, StayState, fold, occurred
from tests.unit.domain_cases import (
    ARRIVAL,
    HOUR,
    MINUTE,
    NOW,
    SOURCE,
    booking,
    logged,
    stay,
)

T0 = NOW - 24 * HOUR
V1 = booking(stay(resource_id="101"))
V2 = booking(stay(resource_id="102"))
V3 = booking(stay(resource_id="201"))
DELETED = booking(stay(resource_id="102"), deleted=True)


def test_no_events_is_none() -> None:
    assert fold([]) is None


@pytest.mark.parametrize(
    ("events", "expected_booking", "expected_at"),
    [
        pytest.param([logged(1, T0, V1)], V1, T0, id="single-event"),
        pytest.param([logged(1, T0, V1), logged(2, T0 + HOUR, V2)], V2, T0 + HOUR, id="later-wins"),
        pytest.param(
            [logged(1, T0 + HOUR, V2), logged(2, T0, V1)],
            V2,
            T0 + HOUR,
            id="later-occurred-wins-over-later-position",
        ),
        pytest.param(
            [logged(1, T0, V1), logged(2, T0, V2)], V2, T0, id="tie-broken-by-higher-position"
        ),
        pytest.param(
            [logged(2, T0, V2), logged(1, T0, V1)], V2, T0, id="tie-broken-by-position-not-list"
        ),
        pytest.param(
            [logged(1, T0, V1), logged(2, T0 + HOUR, DELETED)],
            DELETED,
            T0 + HOUR,
            id="deleted-is-a-state",
        ),
        pytest.param(
            [logged(1, T0, V1), logged(2, T0 + HOUR, DELETED), logged(3, T0 + 2 * HOUR, V3)],
            V3,
            T0 + 2 * HOUR,
            id="deleted-then-revived",
        ),
        pytest.param(
            [logged(1, T0, V1), logged(3, T0 + 2 * HOUR, DELETED), logged(2, T0 + HOUR, V3)],
            DELETED,
            T0 + 2 * HOUR,
            id="late-arriving-older-event-does-not-revive",
        ),
        pytest.param(
            [
                logged(1, datetime.fromisoformat("2026-11-22T10:30:00+01:00"), V1),
                logged(2, datetime.fromisoformat("2026-11-22T10:00:00+00:00"), V2),
            ],
            V2,
            datetime.fromisoformat("2026-11-22T10:00:00+00:00"),
            id="instants-compared-across-offsets",
        ),
    ],
)
def test_latest_event_wins(
    events: list[LoggedEvent], expected_booking: Booking, expected_at: datetime
) -> None:
    result = fold(events)

    assert result is not None
    assert result.booking == expected_booking
    assert result.occurred_at == expected_at
    assert result.deleted is expected_booking.deleted
    assert result.last_position == max(e.position for e in events)
    assert result.source == SOURCE
    assert result.stays == tuple(StayState(stay=s) for s in expected_booking.stays)


def test_deleted_and_revived_flags() -> None:
    deleted = fold([logged(1, T0, V1), logged(2, T0 + HOUR, DELETED)])
    revived = fold([logged(1, T0, V1), logged(2, T0 + HOUR, DELETED), logged(3, T0 + 2 * HOUR, V3)])

    assert deleted is not None
    assert revived is not None
    assert (deleted.deleted, revived.deleted) == (True, False)


CHECKIN_HISTORY = [
    logged(1, T0, booking(stay(status="confirmed"))),
    logged(2, T0 + HOUR, booking(stay(status="checked_in"))),
    logged(3, T0 + 2 * HOUR, booking(stay(status="checked_in"))),
    logged(4, T0 + 3 * HOUR, booking(stay(status="checked_out"))),
    logged(5, T0 + 4 * HOUR, booking(stay(status="checked_out"))),
]


@pytest.mark.parametrize(
    "order",
    [pytest.param(p, id="-".join(str(i) for i in p)) for p in itertools.permutations(range(5))][
        ::7
    ],
)
def test_order_of_arrival_is_irrelevant(order: tuple[int, ...]) -> None:
    expected = fold(CHECKIN_HISTORY)

    assert fold([CHECKIN_HISTORY[i] for i in order]) == expected


def test_every_permutation_gives_the_same_state() -> None:
    results = {
        repr(fold([CHECKIN_HISTORY[i] for i in p])) for p in itertools.permutations(range(5))
    }

    assert results == {repr(fold(CHECKIN_HISTORY))}


def _times(*statuses_at: tuple[int, str]) -> tuple[datetime | None, datetime | None]:
    """checked_in_at/checked_out_at of stay S1 after events with these (hour, status)."""
    state = fold(
        [
            logged(i + 1, T0 + hour * HOUR, booking(stay(status=status)))
            for i, (hour, status) in enumerate(statuses_at)
        ]
    )
    assert state is not None
    only = state.stays[0]
    return only.checked_in_at, only.checked_out_at


@pytest.mark.parametrize(
    ("history", "checked_in_at", "checked_out_at"),
    [
        pytest.param([(0, "confirmed")], None, None, id="never-checked-in"),
        pytest.param([(0, "confirmed"), (2, "checked_in")], 2, None, id="checked-in"),
        pytest.param(
            [(0, "confirmed"), (2, "checked_in"), (3, "checked_in"), (5, "checked_in")],
            2,
            None,
            id="first-check-in-time-kept",
        ),
        pytest.param(
            [(0, "checked_in"), (2, "checked_out"), (4, "checked_out")],
            0,
            2,
            id="first-check-out-time-kept",
        ),
        pytest.param(
            [(0, "confirmed"), (2, "checked_in"), (3, "confirmed")],
            None,
            None,
            id="undone-check-in",
        ),
        pytest.param(
            [(0, "confirmed"), (2, "checked_in"), (3, "confirmed"), (6, "checked_in")],
            6,
            None,
            id="undone-check-in-then-checked-in-again",
        ),
        pytest.param(
            [(0, "checked_in"), (2, "checked_out"), (3, "checked_in")],
            0,
            None,
            id="undone-check-out-keeps-check-in",
        ),
        pytest.param(
            [(0, "confirmed"), (2, "checked_out")], 2, 2, id="checked-out-implies-checked-in"
        ),
        pytest.param(
            [(0, "checked_in"), (2, "cancelled")], None, None, id="cancelled-after-check-in"
        ),
    ],
)
def test_check_in_and_out_times(
    history: list[tuple[int, str]], checked_in_at: int | None, checked_out_at: int | None
) -> None:
    expected = (
        None if checked_in_at is None else T0 + checked_in_at * HOUR,
        None if checked_out_at is None else T0 + checked_out_at * HOUR,
    )

    assert _times(*history) == expected


def test_check_in_time_follows_occurred_at_not_arrival_order() -> None:
    events = [
        logged(1, T0 + 3 * HOUR, booking(stay(status="checked_in"))),
        logged(2, T0 + HOUR, booking(stay(status="checked_in"))),
        logged(3, T0, booking(stay(status="confirmed"))),
    ]

    result = fold(events)

    assert result is not None
    assert result.stays[0].checked_in_at == T0 + HOUR


def test_times_are_kept_per_stay() -> None:
    events = [
        logged(1, T0, booking(stay("S1"), stay("S2", resource_id="102"))),
        logged(
            2,
            T0 + HOUR,
            booking(stay("S1", status="checked_in"), stay("S2", resource_id="102")),
        ),
        logged(
            3,
            T0 + 2 * HOUR,
            booking(
                stay("S1", status="checked_in"), stay("S2", resource_id="102", status="checked_in")
            ),
        ),
    ]

    result = fold(events)

    assert result == BookingState(
        source=SOURCE,
        booking=events[2].event.booking,
        stays=(
            StayState(
                stay=stay("S1", status="checked_in"), checked_in_at=T0 + HOUR, checked_out_at=None
            ),
            StayState(
                stay=stay("S2", resource_id="102", status="checked_in"),
                checked_in_at=T0 + 2 * HOUR,
                checked_out_at=None,
            ),
        ),
        last_position=3,
        occurred_at=T0 + 2 * HOUR,
    )


def test_removed_stay_is_not_in_the_state() -> None:
    events = [
        logged(1, T0, booking(stay("S1"), stay("S2", resource_id="102"))),
        logged(2, T0 + MINUTE, booking(stay("S1"))),
    ]

    result = fold(events)

    assert result is not None
    assert [s.stay.stay_id for s in result.stays] == ["S1"]
    assert result.stays[0].stay.arrival == ARRIVAL


# --- time from a PMS is bounded by when the event was received --------------------------------


def received(
    position: int, occurred_at: datetime, received_at: datetime, value: Booking
) -> LoggedEvent:
    event = logged(position, occurred_at, value)
    return LoggedEvent(position=event.position, received_at=received_at, event=event.event)


CANCELLED = booking(stay(resource_id="101", status="cancelled"))
FIVE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("skew", "ahead", "cancelled_after", "winner"),
    [
        pytest.param(FIVE, timedelta(days=365), 10 * MINUTE, CANCELLED, id="a-year-ahead"),
        pytest.param(FIVE, timedelta(minutes=6), 10 * MINUTE, CANCELLED, id="past-the-skew"),
        pytest.param(
            FIVE,
            timedelta(minutes=6),
            5 * MINUTE + timedelta(seconds=1),
            CANCELLED,
            id="just-after-clamp",
        ),
        pytest.param(FIVE, timedelta(minutes=4), 3 * MINUTE, V1, id="within-the-skew-it-counts"),
        pytest.param(timedelta(0), timedelta(seconds=2), MINUTE / 60, CANCELLED, id="no-skew"),
    ],
)
def test_an_event_dated_ahead_cannot_outrank_a_later_cancellation(
    skew: timedelta, ahead: timedelta, cancelled_after: timedelta, winner: Booking
) -> None:
    """A confirmation stamped ahead of its receipt (a PMS clock running fast, or a row stored
    before ingest refused such events), then a cancellation received a little later."""
    confirmed = received(1, T0 + ahead, T0, V1)
    at = T0 + cancelled_after
    cancelled = received(2, at, at, CANCELLED)

    for events in ([confirmed, cancelled], [cancelled, confirmed]):
        state = fold(events, skew)
        assert state is not None
        assert state.booking == winner


def test_a_check_in_dated_ahead_counts_from_its_receipt_plus_the_skew() -> None:
    checked_in = booking(stay(resource_id="101", status="checked_in"))
    state = fold([received(1, T0 + 24 * HOUR, T0, checked_in)], timedelta(minutes=5))

    assert state is not None
    assert state.stays[0].checked_in_at == T0 + timedelta(minutes=5)
    assert occurred(received(1, T0 + HOUR, T0, V1), timedelta(minutes=5)) == T0 + timedelta(
        minutes=5
    )
