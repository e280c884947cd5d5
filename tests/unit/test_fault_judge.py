"""The fault campaign's judge (bench/fault_judge.py): what counts as a double call, a legitimate
repeat, a stale, duplicate or missing grant, and a database that disagrees with Inlet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.fault_judge import (
    Attempt,
    DbGrant,
    ExpectedStay,
    judge_calls,
    judge_stays,
    lost_events,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = "demo-pms:B-1:S1"
LOCKS = frozenset({"L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"})
START, END = T0 + timedelta(hours=2), T0 + timedelta(days=1, hours=2)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def same(external_id: str) -> str:
    return external_id


class Log:
    """A sandbox request log and the service's attempts, written call by call."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.attempts: list[Attempt] = []

    def call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        sent: int,
        answered: bool = True,
        recorded: str | None = "success",
        key: str = KEY,
    ) -> None:
        """A request arriving at `sent` ms; `recorded` is the outcome the service wrote for
        the attempt (None: the caller died or its late outcome was refused)."""
        self.requests.append(
            {
                "seq": len(self.requests) + 1,
                "at": at(sent).isoformat(),
                "path": path,
                "body": body,
                "status": 200 if answered else None,
            }
        )
        if recorded is not None:
            self.attempts.append(
                Attempt(
                    key=key, started_at=at(sent - 2), finished_at=at(sent + 5), outcome=recorded
                )
            )

    def grant(self, sent: int, **kw: Any) -> None:
        self.call("/GrantAccess", {"externalId": KEY, "locks": ["L-101"]}, sent=sent, **kw)

    def update(self, sent: int, locks: list[str], **kw: Any) -> None:
        body = {"ReferenceId": "ref-1", "externalId": KEY, "locks": locks}
        self.call("/UpdateAccess", body, sent=sent, **kw)

    def revoke(self, sent: int, reference: str = "ref-1", **kw: Any) -> None:
        self.call("/RevokeAccess", {"ReferenceId": reference}, sent=sent, **kw)

    def judge(self) -> tuple[list[str], int]:
        grants = [
            {"ReferenceId": "ref-1", "externalId": KEY, "state": "revoked"},
            {"ReferenceId": "ref-2", "externalId": KEY, "state": "active"},
        ]
        figures = judge_calls(self.requests, self.attempts, grants, same)
        return figures.double, figures.repeats


def test_a_grant_sent_again_after_its_success_was_recorded_is_a_double_call() -> None:
    log = Log()
    log.grant(0)
    log.grant(100)  # the service knew since 5 ms: the read skew of issue 12
    double, repeats = log.judge()
    assert len(double) == 1
    assert double[0] == f"GrantAccess {KEY} #2 (95 ms after the attempt that recorded #1's success)"
    assert repeats == 0


def test_a_repeat_after_a_lost_answer_or_a_killed_caller_is_legitimate() -> None:
    lost = Log()
    lost.grant(0, recorded="temporary")  # Inlet acted; the client timed out
    lost.grant(3000)
    assert lost.judge() == ([], 1)
    killed = Log()
    killed.grant(0, recorded=None)  # answered, but the replica died before writing it
    killed.grant(10_000)
    assert killed.judge() == ([], 1)
    unanswered = Log()
    unanswered.grant(0, answered=False, recorded=None)
    unanswered.grant(10_000)
    assert unanswered.judge() == ([], 1)


def test_a_call_repeated_after_a_recorded_refusal_is_a_double_call() -> None:
    loop = Log()
    loop.grant(0)
    for n in range(3):  # Inlet answers 404 "revoked"; the service sends the same update again
        loop.update(100 + 20 * n, ["L-102"], recorded="permanent")
    double, repeats = loop.judge()
    assert [d.split(" (")[0] for d in double] == [
        f"UpdateAccess {KEY} #3",
        f"UpdateAccess {KEY} #4",
    ]
    assert double[0].endswith("recorded #2's refusal)")
    assert repeats == 0
    retried = Log()
    retried.grant(0, recorded="temporary")  # a 503: the retry policy sends it again
    retried.grant(3000)
    assert retried.judge() == ([], 1)


def test_a_runaway_loop_of_refused_calls_counts_every_repeat() -> None:
    loop = Log()
    loop.grant(0)
    for n in range(5000):
        loop.update(100 + 10 * n, ["L-102"], recorded="permanent")
    double, repeats = loop.judge()
    assert (len(double), repeats) == (4999, 0)


def test_a_grant_while_the_first_is_still_in_flight_is_not_yet_a_double_call() -> None:
    log = Log()
    log.call("/GrantAccess", {"externalId": KEY}, sent=0)  # recorded at 5 ms
    log.call("/GrantAccess", {"externalId": KEY}, sent=3, recorded=None)
    assert log.judge() == ([], 1)


def test_a_grant_after_a_recorded_revocation_is_a_new_change() -> None:
    log = Log()
    log.grant(0)
    log.revoke(100)
    log.grant(200)  # a reinstated stay
    assert log.judge() == ([], 0)


def test_a_second_revocation_of_a_revoked_grant_is_a_double_call() -> None:
    log = Log()
    log.grant(0)
    log.revoke(100)
    log.revoke(200)
    double, _ = log.judge()
    assert [d.split(" (")[0] for d in double] == [f"RevokeAccess {KEY} #3"]


def test_an_update_is_double_only_if_nothing_changed_the_grant_since() -> None:
    back = Log()
    back.grant(0)
    back.update(100, ["L-102"])
    back.update(200, ["L-101"])
    back.update(300, ["L-102"])  # back to the first room: needed
    assert back.judge() == ([], 0)
    again = Log()
    again.grant(0)
    again.update(100, ["L-102"])
    again.update(200, ["L-102"])
    double, _ = again.judge()
    assert [d.split(" (")[0] for d in double] == [f"UpdateAccess {KEY} #3"]


def test_an_update_whose_answer_was_lost_may_have_changed_the_grant() -> None:
    """Back to the first room after an update to another whose answer never came: Inlet may
    hold the other room, so sending the first again is needed, not a double call."""
    log = Log()
    log.grant(0)
    log.update(100, ["L-102"])
    log.update(200, ["L-101"], recorded="temporary")  # Inlet acted; the client timed out
    log.update(3000, ["L-102"])
    assert log.judge() == ([], 0)
    killed = Log()
    killed.grant(0)
    killed.update(100, ["L-102"])
    killed.update(200, ["L-101"], recorded=None)  # answered, the caller died before recording
    killed.update(3000, ["L-102"])
    assert killed.judge() == ([], 0)


def test_a_recovery_grant_for_a_grant_the_service_knows_is_a_double_call() -> None:
    log = Log()
    log.grant(0)
    log.call("/GrantAccess", {"externalId": KEY}, sent=50)  # a recovery: no contact fields
    double, _ = log.judge()
    assert len(double) == 1


# ------------------------------------------------------------------------------ stays


def inlet(external_id: str, reference: str, locks: frozenset[str] = LOCKS, **kw: Any) -> Any:
    grant = {
        "externalId": external_id,
        "ReferenceId": reference,
        "state": "active",
        "locks": sorted(locks),
        "start": START.isoformat(),
        "end": END.isoformat(),
        "code": "4711",
    }
    grant.update(kw)
    return grant


def row(key: str, reference: str | None, state: str = "active", **kw: Any) -> DbGrant:
    values: dict[str, Any] = {
        "key": key,
        "state": state,
        "reference_id": reference,
        "code": "4711",
        "locks": LOCKS,
        "start": START,
        "end": END,
    }
    values.update(kw)
    return DbGrant(**values)


def wanted(key: str, wanted: bool = True) -> ExpectedStay:
    return ExpectedStay(key=key, wanted=wanted, locks=LOCKS, start=START, end=END)


def test_stays_as_wanted_at_inlet_and_in_the_database() -> None:
    figures = judge_stays({KEY: wanted(KEY)}, [inlet(KEY, "ref-1")], {KEY: row(KEY, "ref-1")}, same)
    assert (figures.wanted, figures.active, figures.converged) == (1, 1, True)


def test_each_way_a_stay_can_be_wrong_is_counted_under_its_name() -> None:
    keys = [f"demo-pms:B-{n}:S1" for n in range(6)]
    missing, stale, duplicate, cancelled, dead, other_code = keys
    expected = {k: wanted(k) for k in keys} | {cancelled: wanted(cancelled, wanted=False)}
    grants = [
        inlet(stale, "ref-s", locks=frozenset({"L-102", "MAIN-ENTRANCE"})),  # old room
        inlet(duplicate, "ref-d1"),
        inlet(duplicate, "ref-d2"),
        inlet(cancelled, "ref-c"),
        inlet(dead, "ref-x", state="revoked"),
        inlet(other_code, "ref-o"),
    ]
    db = {
        missing: row(missing, None, state="revoked"),
        stale: row(stale, "ref-s", locks=frozenset({"L-102", "MAIN-ENTRANCE"})),
        duplicate: row(duplicate, "ref-d2"),
        cancelled: row(cancelled, "ref-c", state="revoked"),
        dead: row(dead, "ref-x"),  # reported working, revoked at Inlet
        other_code: row(other_code, "ref-o", code="9999"),
    }
    figures = judge_stays(expected, grants, db, same)
    assert figures.missing == [missing, dead]
    assert figures.stale == [stale]
    assert figures.duplicate == [duplicate]
    assert figures.cancelled_with_access == [cancelled]
    assert figures.db_mismatch == [duplicate, cancelled, dead, other_code]
    assert not figures.converged


def test_a_later_generation_of_a_grant_counts_for_its_stay() -> None:
    def key_of(external_id: str) -> str:
        return external_id.split("#")[0]

    grants = [inlet(KEY, "ref-1", state="revoked"), inlet(f"{KEY}#2", "ref-2")]
    figures = judge_stays({KEY: wanted(KEY)}, grants, {KEY: row(KEY, "ref-2")}, key_of)
    assert figures.converged, figures


def test_lost_events_are_acknowledged_ones_not_stored() -> None:
    assert lost_events({"e1", "e2", "e3"}, ["e1", "e3", "e4"]) == ["e2"]
