"""Does a booking's folded state depend only on its events, never on the order they arrive or are
read in, and can an event stamped ahead of its receipt outrank a later one? Property-based.

Each generated version of the booking names itself in `company` ("v3"), so the version the fold
picked can be told from the state. Times are minutes around one instant; a PMS clock may run
ahead by far more than the allowed skew.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from inlet_bridge.domain.booking import Booking, BookingEvent, Stay
from inlet_bridge.domain.fold import DEFAULT_MAX_CLOCK_SKEW, BookingState, LoggedEvent, fold

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ARRIVAL = T0 + timedelta(days=1)
SKEWS = (timedelta(0), DEFAULT_MAX_CLOCK_SKEW, timedelta(hours=1))
STATUSES = ("confirmed", "checked_in", "checked_out", "cancelled")


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


@st.composite
def versions(draw: st.DrawFn, name: str) -> Booking:
    """A version of the booking: two stays whose statuses move (check-in and check-out times
    are folded from them), and now and then a deletion."""
    return Booking(
        booking_id="R-1",
        property_id="oslo-1",
        company=name,
        stays=tuple(
            Stay(
                stay_id=stay_id,
                resource_id="101",
                arrival=ARRIVAL,
                departure=ARRIVAL + timedelta(days=2),
                status=draw(st.sampled_from(STATUSES)),
            )
            for stay_id in ("S1", "S2")
        ),
        deleted=draw(st.sampled_from((False, False, False, True))),
    )


def event(index: int, occurred_at: datetime, booking: Booking) -> BookingEvent:
    return BookingEvent(
        event_id=f"evt-{index}", source="acme-pms", occurred_at=occurred_at, booking=booking
    )


@st.composite
def logs(draw: st.DrawFn) -> list[LoggedEvent]:
    """Up to six events as the log holds them: distinct positions, received at any time, each
    stamped before, at or after its receipt (by up to ten hours)."""
    count = draw(st.integers(1, 6))
    positions = draw(st.lists(st.integers(1, 1000), min_size=count, max_size=count, unique=True))
    logged = []
    for index, position in enumerate(positions, start=1):
        received_at = T0 + minutes(draw(st.integers(0, 600)))
        ahead = minutes(draw(st.sampled_from((-120, -1, 0, 0, 3, 5, 6, 90, 600))))
        logged.append(
            LoggedEvent(
                position=position,
                received_at=received_at,
                event=event(index, received_at + ahead, draw(versions(f"v{index}"))),
            )
        )
    return logged


def winner(state: BookingState | None, events: list[LoggedEvent]) -> LoggedEvent:
    assert state is not None
    return next(e for e in events if e.event.booking.company == state.booking.company)


@given(events=logs(), order=st.randoms(use_true_random=False), skew=st.sampled_from(SKEWS))
def test_the_order_events_are_read_in_changes_nothing(
    events: list[LoggedEvent], order: random.Random, skew: timedelta
) -> None:
    """Any permutation of the log, with rows read twice, folds to the same state."""
    shuffled = events + order.sample(events, k=order.randint(0, len(events)))
    order.shuffle(shuffled)

    assert fold(shuffled, skew) == fold(events, skew)


@given(events=logs(), skew=st.sampled_from(SKEWS))
def test_an_event_stamped_ahead_never_outranks_a_later_one(
    events: list[LoggedEvent], skew: timedelta
) -> None:
    """The version the fold picks was not received more than the skew before another event
    honestly stamped (not ahead of its own receipt by more than the skew) after that: whatever a
    fast PMS clock says, it counts for at most its receipt plus the skew."""
    state = fold(events, skew)
    picked = winner(state, events)

    for later in events:
        honest = later.event.occurred_at <= later.received_at + skew
        if honest and later.event.occurred_at > picked.received_at + skew:
            raise AssertionError(f"{picked} outranks the later {later}")
    assert state is not None
    assert state.occurred_at <= picked.received_at + skew
    for stay in state.stays:  # no check-in or check-out counts from beyond its receipt
        for at in (stay.checked_in_at, stay.checked_out_at):
            assert at is None or at <= max(e.received_at for e in events) + skew


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[BookingEvent], list[int]]:
    """Versions stamped at distinct times, and an order of delivery with repeats (a PMS sending
    a version again, under a new event_id)."""
    count = draw(st.integers(1, 6))
    stamps = draw(st.lists(st.integers(-600, 0), min_size=count, max_size=count, unique=True))
    stories = [
        event(i, T0 + minutes(stamp), draw(versions(f"v{i}")))
        for i, stamp in enumerate(stamps, start=1)
    ]
    order = list(draw(st.permutations(range(count))))
    for repeat in draw(st.lists(st.integers(0, count - 1), max_size=3)):
        order.insert(draw(st.integers(0, len(order))), repeat)
    return stories, order


def delivered(stories: list[BookingEvent], order: list[int]) -> list[LoggedEvent]:
    """The log after delivering `order` one minute apart, from T0 on (so none is ahead)."""
    log = []
    for position, index in enumerate(order, start=1):
        story = stories[index]
        log.append(
            LoggedEvent(
                position=position,
                received_at=T0 + minutes(position),
                event=event(position, story.occurred_at, story.booking),
            )
        )
    return log


@given(case=deliveries(), other=st.randoms(use_true_random=False))
def test_the_order_of_delivery_changes_nothing(
    case: tuple[list[BookingEvent], list[int]], other: random.Random
) -> None:
    """Delivered in any order, with repeats, the same versions fold to the same state: the
    latest stamped, with the same check-in and check-out times."""
    stories, order = case
    reordered = other.sample(order, k=len(order))

    first = fold(delivered(stories, order))
    second = fold(delivered(stories, reordered))

    assert first is not None
    assert second is not None
    latest = max(stories, key=lambda e: e.occurred_at)
    assert first.booking == latest.booking
    assert (second.booking, second.stays, second.occurred_at) == (
        first.booking,
        first.stays,
        first.occurred_at,
    )
