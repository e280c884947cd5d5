"""A stay's access in plain words, and a retry followed: table tests of the pure rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from inlet_bridge.domain.follow import FollowedCall, retry_progress
from inlet_bridge.domain.states import GrantState
from inlet_bridge.domain.wording import access_in_words, doors

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime.fromisoformat("2026-11-24T09:00:00+00:00")
FROM = datetime.fromisoformat("2026-11-24T14:00:00+00:00")  # 15:00 in Oslo
UNTIL = datetime.fromisoformat("2026-11-25T10:00:00+00:00")  # 11:00 in Oslo
DOORS = ("L-101", "MAIN")


@pytest.mark.parametrize(
    ("state", "valid_from", "words"),
    [
        ("active", NOW - timedelta(hours=1), "code works on L-101 and MAIN until 25 Nov 11:00"),
        ("active", FROM, "code works on L-101 and MAIN from 24 Nov 15:00 until 25 Nov 11:00"),
        ("revoke_failed", FROM, "revocation failed: the code may still open L-101 and MAIN until 25 Nov 11:00"),
        ("revoking", FROM, "being revoked: the code may still open L-101 and MAIN until Inlet confirms"),
        ("revoked", FROM, "revoked: no code works"),
        ("grant_failed", FROM, "grant failed: no code works; the guest has no access"),
        ("update_failed", NOW, "update failed: the previous code still works on L-101 and MAIN until 25 Nov 11:00"),
        ("granting", FROM, "being granted: the code will work on L-101 and MAIN from 24 Nov 15:00 until 25 Nov 11:00"),
        ("updating", NOW, "being updated: the current code works on L-101 and MAIN until 25 Nov 11:00"),
        ("pending", FROM, "not sent yet: the code will work on L-101 and MAIN from 24 Nov 15:00 until 25 Nov 11:00; sent from 23 Nov 15:00"),
        ("none", None, "no access: none is wanted"),
    ],
)  # fmt: skip
def test_access_in_words(state: GrantState, valid_from: datetime | None, words: str) -> None:
    said = access_in_words(
        state=state,
        access_points=DOORS,
        valid_from=valid_from,
        valid_to=UNTIL,
        now=NOW,
        zone=OSLO,
        send_after=FROM - timedelta(days=1),
    )
    assert said == words


def test_a_code_past_its_end_is_not_said_to_work() -> None:
    said = access_in_words(
        state="active",
        access_points=("L-101",),
        valid_from=NOW - timedelta(days=2),
        valid_to=NOW - timedelta(hours=1),
        now=NOW,
        zone=OSLO,
    )
    assert said == "code worked on L-101 until 24 Nov 09:00; to be revoked"


def test_doors_are_listed_as_a_person_says_them() -> None:
    assert doors(()) == "no door"
    assert doors(("A",)) == "A"
    assert doors(("A", "B", "C")) == "A, B and C"


def call(state: str, outcome: str | None = None) -> FollowedCall:
    return FollowedCall(id=7, operation="grant", state=state, attempts=2, last_outcome=outcome)


@pytest.mark.parametrize(
    ("kwargs", "state", "finished"),
    [
        ({"retried_at": None}, "not_retried", False),
        ({"retried_at": NOW}, "planning", False),
        ({"retried_at": NOW, "looked_at_since": True}, "not_needed", True),
        ({"retried_at": NOW, "call": call("superseded"), "looked_at_since": True}, "not_needed", True),
        ({"retried_at": NOW, "call": call("superseded")}, "planning", False),
        ({"retried_at": NOW, "call": call("pending")}, "pending", False),
        ({"retried_at": NOW, "call": call("pending", "temporary")}, "pending", False),
        ({"retried_at": NOW, "call": call("succeeded", "success")}, "succeeded", True),
        ({"retried_at": NOW, "call": call("failed", "permanent"), "escalation_id": 9}, "failed_again", True),
        ({"retried_at": NOW, "is_delivery": True, "delivery_state": "pending"}, "pending", False),
        ({"retried_at": NOW, "is_delivery": True, "delivery_state": "delivered"}, "succeeded", True),
        ({"retried_at": NOW, "is_delivery": True, "delivery_state": "failed"}, "failed_again", True),
    ],
)  # fmt: skip
def test_a_retry_is_followed_to_its_end(kwargs: dict, state: str, finished: bool) -> None:  # type: ignore[type-arg]
    progress = retry_progress(**kwargs)
    assert progress.state == state
    assert progress.finished is finished
    assert progress.escalation_id == (9 if state == "failed_again" and "call" in kwargs else None)


def test_the_words_say_which_call_and_how_many_attempts() -> None:
    progress = retry_progress(retried_at=NOW, call=call("pending", "temporary"))
    assert progress.words == "grant #7 pending: retrying (2 attempts so far)"
    assert retry_progress(retried_at=NOW, call=call("succeeded")).words == (
        "grant #7 succeeded (2 attempts)"
    )
