"""After a failed Inlet call, what next: retry when, or give up and escalate how loudly?

Inlet's rule: retry temporary failures every 5 minutes, for at most 60 minutes and at most 30
attempts, whichever comes first (with the defaults, 60 minutes end it after 13 attempts); then
mark the booking for manual follow-up. A call whose next retry would come after access should
have started is escalated early, while retries go on. A failed revocation is the loudest: old
access may still open the door; so is a failed recovery (the GrantAccess that gets back a grant
to revoke), which is escalated as part of the revocation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from inlet_bridge.domain.config import RetryPolicy
from inlet_bridge.domain.vocab import RECOVER, RESYNC, CallOperation, Severity

GiveUpReason = Literal["permanent_error", "max_attempts", "max_duration"]


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    late: bool  # the retry comes after access should have started: escalate early


class GiveUp(msgspec.Struct, frozen=True, kw_only=True):
    reason: GiveUpReason
    severity: Severity


def severity_for(operation: str, reason: str) -> Severity:
    if operation == "revoke" or reason == RECOVER:
        return "critical"
    return "high"


def escalation_operation(operation: str, reason: str) -> str:
    """The operation an escalated call is filed under (the series alerts and operators see).

    A failed re-sync has its own series: guests may keep codes that no longer work. A failed
    recovery is a revocation that could not be done: a grant may still open the door.
    """
    if reason == RESYNC:
        return RESYNC
    if reason == RECOVER:
        return "revoke"
    return operation


def after_failure(
    *,
    operation: CallOperation,
    reason: str,
    permanent: bool,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    deadline: datetime | None,
    policy: RetryPolicy,
) -> Retry | GiveUp:
    """`attempts` counts the attempt that just failed."""
    if permanent:
        return GiveUp(reason="permanent_error", severity=severity_for(operation, reason))
    if attempts >= policy.max_attempts:
        return GiveUp(reason="max_attempts", severity=severity_for(operation, reason))
    at = now + timedelta(minutes=policy.interval_minutes)
    if at - first_attempt_at > timedelta(minutes=policy.max_minutes):
        return GiveUp(reason="max_duration", severity=severity_for(operation, reason))
    late = operation != "revoke" and deadline is not None and at > deadline
    return Retry(at=at, late=late)


FIRST_DELIVERY_DELAY_SECONDS = 10.0


class DeliveryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Backoff for deliveries to a PMS: 10 s, doubling, at most 5 minutes apart, for an hour."""

    first_delay_seconds: float = FIRST_DELIVERY_DELAY_SECONDS
    max_delay_seconds: float = 300.0
    max_attempts: int = 30
    max_minutes: float = 60.0

    @classmethod
    def within(cls, retry: RetryPolicy) -> DeliveryPolicy:
        """Deliveries within the limits of Inlet calls (`[retry]`): the same attempts and
        minutes, never further apart than its interval, but starting sooner (a PMS receiver
        that blinked is usually back within seconds)."""
        return cls(
            max_delay_seconds=max(FIRST_DELIVERY_DELAY_SECONDS, retry.interval_minutes * 60),
            max_attempts=retry.max_attempts,
            max_minutes=retry.max_minutes,
        )


def after_delivery_failure(
    *, attempts: int, first_attempt_at: datetime, now: datetime, policy: DeliveryPolicy
) -> datetime | None:
    """When to try a failed delivery again, or None to give up (and escalate)."""
    if attempts >= policy.max_attempts:
        return None
    delay = min(policy.first_delay_seconds * 2 ** (attempts - 1), policy.max_delay_seconds)
    at = now + timedelta(seconds=delay)
    if at - first_attempt_at > timedelta(minutes=policy.max_minutes):
        return None
    return at


def poll_delay(*, interval: float, failures: int, max_backoff: float) -> float:
    """Seconds until a PMS connection is polled again: its interval, doubled for each failed
    poll in a row, at most `max_backoff` (but never less than the interval itself)."""
    if failures <= 0:
        return interval
    return max(interval, min(interval * 2.0**failures, max_backoff))
