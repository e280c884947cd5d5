"""After a failed Inlet call: retry when, or give up how loudly? Tables of cases for the policy."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from inlet_bridge.domain.config import RetryPolicy
from inlet_bridge.domain.retry import (
    DeliveryPolicy,
    GiveUp,
    Retry,
    after_delivery_failure,
    after_failure,
    escalation_operation,
    poll_delay,
)
from tests.unit.domain_cases import ARRIVAL, HOUR, MINUTE, hotels

T0 = ARRIVAL - 6 * HOUR  # the first attempt
DEFAULT = RetryPolicy()


def failure(
    *,
    operation: str = "grant",
    permanent: bool = False,
    attempts: int = 1,
    minutes: float = 0,
    deadline: datetime | None = None,
    policy: RetryPolicy = DEFAULT,
) -> Retry | GiveUp:
    """The decision after attempt number `attempts`, failing `minutes` after the first."""
    return after_failure(
        operation=operation,  # type: ignore[arg-type]
        reason="temporary" if not permanent else "permanent",
        permanent=permanent,
        attempts=attempts,
        first_attempt_at=T0,
        now=T0 + timedelta(minutes=minutes),
        deadline=deadline,
        policy=policy,
    )


def attempt_minutes(policy: RetryPolicy, operation: str = "grant") -> tuple[list[float], GiveUp]:
    """Fail every attempt: the minutes (since the first) of every attempt made, and the end."""
    minutes: list[float] = [0.0]
    while True:
        decision = failure(
            operation=operation, attempts=len(minutes), minutes=minutes[-1], policy=policy
        )
        if isinstance(decision, GiveUp):
            return minutes, decision
        assert decision.late is False
        minutes.append((decision.at - T0) / MINUTE)
        assert len(minutes) < 2000


def test_defaults_are_inlets_rule() -> None:
    assert (DEFAULT.interval_minutes, DEFAULT.max_attempts, DEFAULT.max_minutes) == (5.0, 30, 60.0)
    assert hotels().retry == DEFAULT


def test_defaults_end_after_13_attempts_by_duration() -> None:
    minutes, end = attempt_minutes(DEFAULT)

    assert minutes == [5.0 * i for i in range(13)]  # t = 0, 5, ..., 60 min
    assert end == GiveUp(reason="max_duration", severity="high")


@pytest.mark.parametrize(
    ("policy", "expected_minutes", "end"),
    [
        pytest.param(
            RetryPolicy(max_attempts=3),
            [0.0, 5.0, 10.0],
            GiveUp(reason="max_attempts", severity="high"),
            id="three-attempts",
        ),
        pytest.param(
            RetryPolicy(max_attempts=1),
            [0.0],
            GiveUp(reason="max_attempts", severity="high"),
            id="one-attempt",
        ),
        pytest.param(
            RetryPolicy(max_attempts=13),
            [5.0 * i for i in range(13)],
            GiveUp(reason="max_attempts", severity="high"),
            id="attempts-and-duration-end-together",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=10),
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            GiveUp(reason="max_duration", severity="high"),
            id="every-10-minutes",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=7),
            [7.0 * i for i in range(9)],
            GiveUp(reason="max_duration", severity="high"),
            id="every-7-minutes-last-at-56",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=1, max_attempts=30, max_minutes=60),
            [float(i) for i in range(30)],
            GiveUp(reason="max_attempts", severity="high"),
            id="every-minute-attempts-first",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=5, max_minutes=12),
            [0.0, 5.0, 10.0],
            GiveUp(reason="max_duration", severity="high"),
            id="short-duration",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=30, max_attempts=1000, max_minutes=24 * 60),
            [30.0 * i for i in range(49)],
            GiveUp(reason="max_duration", severity="high"),
            id="a-day-every-half-hour",
        ),
    ],
)
def test_configurable_limits(
    policy: RetryPolicy, expected_minutes: list[float], end: GiveUp
) -> None:
    minutes, decision = attempt_minutes(policy)

    assert minutes == expected_minutes
    assert decision == end


@pytest.mark.parametrize(
    ("operation", "reason", "permanent", "attempts", "minutes", "expected"),
    [
        pytest.param(
            "grant",
            "recover",
            True,
            1,
            0,
            GiveUp(reason="permanent_error", severity="critical"),
            id="recovery-refused",
        ),
        pytest.param(
            "grant",
            "recover",
            False,
            13,
            60,
            GiveUp(reason="max_duration", severity="critical"),
            id="recovery-out-of-time",
        ),
        pytest.param(
            "grant",
            "booking",
            True,
            1,
            0,
            GiveUp(reason="permanent_error", severity="high"),
            id="grant-refused",
        ),
        pytest.param(
            "update",
            "resync",
            True,
            1,
            0,
            GiveUp(reason="permanent_error", severity="high"),
            id="resync-refused",
        ),
    ],
)
def test_a_failed_recovery_is_as_loud_as_a_failed_revocation(
    operation: str, reason: str, permanent: bool, attempts: int, minutes: float, expected: GiveUp
) -> None:
    """A recovery gets back a grant that must go: while it fails, a cancelled guest may hold a
    code that opens the door."""
    decision = after_failure(
        operation=operation,  # type: ignore[arg-type]
        reason=reason,
        permanent=permanent,
        attempts=attempts,
        first_attempt_at=T0,
        now=T0 + timedelta(minutes=minutes),
        deadline=None,
        policy=DEFAULT,
    )

    assert decision == expected


@pytest.mark.parametrize(
    ("operation", "reason", "filed_under"),
    [
        pytest.param("grant", "booking", "grant", id="grant"),
        pytest.param("update", "booking", "update", id="update"),
        pytest.param("revoke", "booking", "revoke", id="revoke"),
        pytest.param("update", "resync", "resync", id="resync"),
        pytest.param("grant", "recover", "revoke", id="recovery-pages-as-a-revocation"),
    ],
)
def test_escalation_operation(operation: str, reason: str, filed_under: str) -> None:
    assert escalation_operation(operation, reason) == filed_under


@pytest.mark.parametrize(
    ("operation", "attempts", "minutes", "expected"),
    [
        pytest.param(
            "grant", 1, 0, GiveUp(reason="permanent_error", severity="high"), id="grant-first"
        ),
        pytest.param(
            "update", 5, 20, GiveUp(reason="permanent_error", severity="high"), id="update-later"
        ),
        pytest.param(
            "revoke", 1, 0, GiveUp(reason="permanent_error", severity="critical"), id="revoke"
        ),
        pytest.param(
            "grant",
            30,
            120,
            GiveUp(reason="permanent_error", severity="high"),
            id="permanent-wins-over-limits",
        ),
    ],
)
def test_permanent_error_gives_up_at_once(
    operation: str, attempts: int, minutes: float, expected: GiveUp
) -> None:
    assert failure(operation=operation, permanent=True, attempts=attempts, minutes=minutes) == (
        expected
    )


@pytest.mark.parametrize(
    ("operation", "attempts", "minutes", "expected"),
    [
        pytest.param("grant", 30, 0, GiveUp(reason="max_attempts", severity="high"), id="grant"),
        pytest.param("update", 30, 0, GiveUp(reason="max_attempts", severity="high"), id="update"),
        pytest.param(
            "revoke", 30, 0, GiveUp(reason="max_attempts", severity="critical"), id="revoke"
        ),
        pytest.param(
            "revoke", 13, 60, GiveUp(reason="max_duration", severity="critical"), id="revoke-late"
        ),
        pytest.param(
            "update", 13, 60, GiveUp(reason="max_duration", severity="high"), id="update-late"
        ),
        pytest.param(
            "grant", 31, 0, GiveUp(reason="max_attempts", severity="high"), id="beyond-max"
        ),
        pytest.param(
            "grant", 2, 56, GiveUp(reason="max_duration", severity="high"), id="slow-attempts"
        ),
        pytest.param(
            "grant", 29, 10, Retry(at=T0 + 15 * MINUTE, late=False), id="one-attempt-left"
        ),
        pytest.param("grant", 12, 55, Retry(at=T0 + HOUR, late=False), id="retry-at-exactly-60"),
        pytest.param("revoke", 2, 5, Retry(at=T0 + 10 * MINUTE, late=False), id="revoke-retried"),
    ],
)
def test_limits_and_severities(
    operation: str, attempts: int, minutes: float, expected: Retry | GiveUp
) -> None:
    assert failure(operation=operation, attempts=attempts, minutes=minutes) == expected


@pytest.mark.parametrize(
    ("operation", "deadline", "late"),
    [
        pytest.param("grant", None, False, id="no-deadline"),
        pytest.param("grant", T0 + HOUR, False, id="deadline-far"),
        pytest.param("grant", T0 + 15 * MINUTE, False, id="retry-exactly-at-deadline"),
        pytest.param("grant", T0 + 15 * MINUTE - MINUTE, True, id="retry-after-deadline"),
        pytest.param("update", T0 + 12 * MINUTE, True, id="update-after-deadline"),
        pytest.param("grant", T0 - HOUR, True, id="deadline-already-passed"),
        pytest.param("revoke", T0 + 12 * MINUTE, False, id="revoke-never-late"),
        pytest.param("revoke", T0 - HOUR, False, id="revoke-past-deadline-never-late"),
    ],
)
def test_late_flag(operation: str, deadline: datetime | None, late: bool) -> None:
    decision = failure(operation=operation, attempts=3, minutes=10, deadline=deadline)

    assert decision == Retry(at=T0 + 15 * MINUTE, late=late)


def test_late_retry_still_gives_up_at_the_limits() -> None:
    decision = failure(attempts=13, minutes=60, deadline=T0 - HOUR)

    assert decision == GiveUp(reason="max_duration", severity="high")


# --- deliveries to a PMS: 10 s doubling, at most 5 min apart, for an hour -----------------------


@pytest.mark.parametrize(
    ("attempts", "seconds_since_first", "expected_delay"),
    [
        pytest.param(1, 0, 10.0, id="first-10s"),
        pytest.param(2, 10, 20.0, id="doubles"),
        pytest.param(3, 30, 40.0, id="doubles-again"),
        pytest.param(6, 310, 300.0, id="capped-at-5-min"),
        pytest.param(20, 3000, 300.0, id="stays-capped"),
        pytest.param(20, 3300, 300.0, id="exactly-an-hour"),
        pytest.param(20, 3301, None, id="past-an-hour"),
        pytest.param(30, 0, None, id="max-attempts"),
    ],
)
def test_delivery_backoff(
    attempts: int, seconds_since_first: float, expected_delay: float | None
) -> None:
    now = T0 + timedelta(seconds=seconds_since_first)

    at = after_delivery_failure(
        attempts=attempts, first_attempt_at=T0, now=now, policy=DeliveryPolicy()
    )

    assert at == (None if expected_delay is None else now + timedelta(seconds=expected_delay))


@pytest.mark.parametrize(
    ("interval", "failures", "expected"),
    [
        (60, 0, 60),  # all well: the interval
        (60, 1, 120),  # each failure in a row doubles it
        (60, 2, 240),
        (60, 3, 480),
        (60, 4, 600),  # capped
        (60, 30, 600),
        (900, 2, 900),  # a long interval is never shortened by the cap
        (1, 5, 32),
    ],
)
def test_poll_delay_backs_off_and_is_capped(
    interval: float, failures: int, expected: float
) -> None:
    assert poll_delay(interval=interval, failures=failures, max_backoff=600) == expected


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        pytest.param(RetryPolicy(), DeliveryPolicy(), id="defaults-agree"),
        pytest.param(
            RetryPolicy(interval_minutes=2, max_attempts=5, max_minutes=20),
            DeliveryPolicy(max_delay_seconds=120, max_attempts=5, max_minutes=20),
            id="follows-the-retry-section",
        ),
        pytest.param(
            RetryPolicy(interval_minutes=0.1),
            DeliveryPolicy(max_delay_seconds=10),
            id="never-below-the-first-delay",
        ),
    ],
)
def test_deliveries_keep_within_the_retry_limits(
    retry: RetryPolicy, expected: DeliveryPolicy
) -> None:
    assert DeliveryPolicy.within(retry) == expected
