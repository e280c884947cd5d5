"""Where is a retried escalation now? `retry_progress(...)`: the call a retry led to, followed.

A retry of a call escalation resolves it and marks the booking; the reconciler then plans the
call again from the booking's current state (`docs/architecture.md`, "Escalations"). So the
call to follow is the grant's newest call after the one that gave up: waiting to be planned,
pending (queued or in flight), succeeded, or failed again (with its own new escalation). If
the booking was looked at after the retry and no call came of it, none was needed (access is
already as wanted, or no longer wanted). A retried delivery is the same delivery, tried again
from scratch. Pure: the store reads the rows, this says what they mean.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

RetryState = Literal[
    "not_retried", "planning", "pending", "succeeded", "failed_again", "not_needed"
]
# The states after which nothing more will happen to this retry.
FINISHED: frozenset[RetryState] = frozenset({"succeeded", "failed_again", "not_needed"})


class FollowedCall(msgspec.Struct, frozen=True, kw_only=True):
    """The newest Inlet call of the escalation's grant after the call that gave up."""

    id: int
    operation: str
    state: str  # pending, succeeded, failed, superseded
    attempts: int
    last_outcome: str | None = None
    last_message: str | None = None


class RetryProgress(msgspec.Struct, frozen=True, kw_only=True):
    state: RetryState
    retried_at: datetime | None = None
    retried_by: str | None = None
    call: FollowedCall | None = None
    delivery_state: str | None = None
    # The escalation raised when the followed call or delivery gave up again.
    escalation_id: int | None = None
    words: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def retry_progress(
    *,
    retried_at: datetime | None,
    retried_by: str | None = None,
    call: FollowedCall | None = None,
    delivery_state: str | None = None,
    is_delivery: bool = False,
    looked_at_since: bool = False,
    escalation_id: int | None = None,
) -> RetryProgress:
    """What became of a retry. `looked_at_since`: the reconciler converged the booking after the
    retry (nothing marked since), so a call it needed would exist by now."""

    def progress(state: RetryState, words: str) -> RetryProgress:
        return RetryProgress(
            state=state,
            retried_at=retried_at,
            retried_by=retried_by,
            call=call,
            delivery_state=delivery_state,
            escalation_id=escalation_id if state == "failed_again" else None,
            words=words,
        )

    if retried_at is None:
        return progress("not_retried", "not retried")
    if is_delivery:
        match delivery_state:
            case "delivered":
                return progress("succeeded", "delivered to the PMS")
            case "failed":
                return progress("failed_again", "the delivery failed again")
            case _:
                return progress("pending", "the delivery is being tried again")
    if call is None or call.state == "superseded":
        if looked_at_since:
            return progress(
                "not_needed",
                "the booking was planned again and needed no call: access is as wanted",
            )
        return progress("planning", "waiting for the booking to be planned again")
    attempts = f"{call.attempts} attempt{'s' if call.attempts != 1 else ''}"
    match call.state:
        case "succeeded":
            return progress("succeeded", f"{call.operation} #{call.id} succeeded ({attempts})")
        case "failed":
            return progress(
                "failed_again", f"{call.operation} #{call.id} failed again ({attempts})"
            )
        case _:
            if call.last_outcome in ("temporary", "permanent"):
                return progress(
                    "pending", f"{call.operation} #{call.id} pending: retrying ({attempts} so far)"
                )
            return progress("pending", f"{call.operation} #{call.id} pending")
