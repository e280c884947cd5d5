"""Did a fault scenario end with the truth at Inlet? The judge of `bench/faults.py`.

Pure functions over what was observed (the PMS's ledger, the events stored, the grants and the
request log of the Inlet sandbox, the grants and call attempts of the database); no I/O, so
the definitions below are tested on their own (tests/unit/test_fault_judge.py).

Per stay (one grant per stay, keyed `source:booking_id:stay_id`), the latest stored event of
its booking says what is wanted: a confirmed stay wants one grant with its room's locks and
the common doors, from arrival to departure; a cancelled stay wants none.

- missing: a wanted stay with no active grant at Inlet.
- duplicate: a stay with more than one active grant at Inlet.
- stale: a wanted stay whose one active grant has other locks, start or end than wanted.
- cancelled with access: a stay that wants no access but has an active grant at Inlet.
- db≠inlet: the database tells another story than Inlet: it reports a grant active that Inlet
  does not hold as such (another ReferenceId or code, other locks or times, revoked), or
  reports none while Inlet holds one.

A double call is a request that asks again for a change Inlet had already answered *and the
service knew it*: an earlier request with the same effect (GrantAccess: the same externalId,
whatever the body, since Inlet answers a repeat with the grant it holds; UpdateAccess: the
same ReferenceId and body; RevokeAccess: the same ReferenceId) got a final answer (success,
or a refusal the service takes as permanent), that answer was recorded (a `call_attempts`
row with that outcome whose attempt spans the earlier request's arrival at the sandbox), the
repeat arrived after that attempt ended, and nothing recorded in between made the change
needed again (for a GrantAccess: a recorded revocation of the stay's grant; for an
UpdateAccess: another update, grant or revocation of the grant with a final answer, or another
update that got none, since Inlet may have applied it).
The attempt's end is stamped just before its commit; that is sound because the call stays
pending and leased until the commit, so no other call of the stay can be sent in between (a
lease that ran out first makes the commit refuse the outcome, and then nothing is recorded).
A repeat after an answer that was temporary (a 503: retried by the policy), lost (a timeout,
a cut connection) or never recorded (the caller was killed, or its late outcome was refused)
is legitimate and counted apart, as a repeat; so is a request sent while the identical one
is still in flight.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GRANT, UPDATE, REVOKE = "/GrantAccess", "/UpdateAccess", "/RevokeAccess"


@dataclass(frozen=True)
class ExpectedStay:
    """What one stay should have at Inlet once the system has converged."""

    key: str
    wanted: bool
    locks: frozenset[str]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class DbGrant:
    """One row of the `grants` table: what the service believes Inlet holds for a stay."""

    key: str
    state: str
    reference_id: str | None
    code: str | None
    locks: frozenset[str]
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Attempt:
    """One recorded call attempt (`call_attempts` joined with its call's grant key)."""

    key: str
    started_at: datetime
    finished_at: datetime
    outcome: str


@dataclass
class StayFigures:
    wanted: int = 0
    active: int = 0
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    cancelled_with_access: list[str] = field(default_factory=list)
    db_mismatch: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not (
            self.missing
            or self.stale
            or self.duplicate
            or self.cancelled_with_access
            or self.db_mismatch
        )


@dataclass
class CallFigures:
    requests: int = 0
    repeats: int = 0  # legitimate repeats: the earlier answer was lost or never recorded
    double: list[str] = field(default_factory=list)  # "path key #seq" of each double call


def lost_events(acknowledged: Iterable[str], stored: Iterable[str]) -> list[str]:
    """Events answered 202 that the database does not hold."""
    held = set(stored)
    return sorted(e for e in acknowledged if e not in held)


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def judge_stays(
    expected: Mapping[str, ExpectedStay],
    inlet_grants: Sequence[Mapping[str, Any]],
    db_grants: Mapping[str, DbGrant],
    key_of: Callable[[str], str],
) -> StayFigures:
    """The per-stay figures: Inlet's grants (GET /_sandbox/grants) against what is wanted,
    and the database's grants against Inlet's."""
    active: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for grant in inlet_grants:
        if grant["state"] == "active":
            active[key_of(str(grant["externalId"]))].append(grant)
    figures = StayFigures()
    for key in sorted(set(expected) | set(active)):
        held = active.get(key, [])
        stay = expected.get(key)
        figures.active += bool(held)
        if len(held) > 1:
            figures.duplicate.append(key)
        if stay is None or not stay.wanted:
            if held:
                figures.cancelled_with_access.append(key)
        else:
            figures.wanted += 1
            if not held:
                figures.missing.append(key)
            elif len(held) == 1 and not _as_wanted(held[0], stay):
                figures.stale.append(key)
        if not _db_agrees(db_grants.get(key), held):
            figures.db_mismatch.append(key)
    return figures


def _as_wanted(grant: Mapping[str, Any], stay: ExpectedStay) -> bool:
    return (
        frozenset(grant["locks"]) == stay.locks
        and _when(grant["start"]) == stay.start
        and _when(grant["end"]) == stay.end
    )


def _db_agrees(row: DbGrant | None, held: Sequence[Mapping[str, Any]]) -> bool:
    reports_active = row is not None and row.state == "active"
    if not held:
        return not reports_active
    if not reports_active or len(held) != 1:
        return False
    assert row is not None
    grant = held[0]
    return (
        row.reference_id == grant["ReferenceId"]
        and row.code == grant["code"]
        and row.locks == frozenset(grant["locks"])
        and row.start is not None
        and row.end is not None
        and row.start == _when(grant["start"])
        and row.end == _when(grant["end"])
    )


def _signature(path: str, body: Mapping[str, Any]) -> tuple[str, ...] | None:
    """What a request changes at Inlet: requests with equal signatures make the same change."""
    if path == GRANT:
        return (GRANT, str(body.get("externalId")))
    if path == UPDATE:
        return (UPDATE, str(body.get("ReferenceId")), json.dumps(body, sort_keys=True))
    if path == REVOKE:
        return (REVOKE, str(body.get("ReferenceId")))
    return None


FINAL = ("success", "permanent")  # answers the service does not retry by itself
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Request:
    seq: int
    at: datetime
    path: str
    key: str
    signature: tuple[str, ...]
    recorded: Attempt | None  # the attempt that recorded its final answer, if any


class _Stay:
    """What the service had recorded of one stay's grant, as the timeline is replayed."""

    def __init__(self) -> None:
        self.revoked_at = _NEVER  # the last recorded successful revocation
        self.last: tuple[datetime, tuple[str, ...]] | None = None  # the last final answer
        self.before_other = _NEVER  # the last final answer to another signature than `last`
        # The last arrival of each update that got no recorded final answer (lost, or its
        # caller died): Inlet may have applied it, which makes any other content needed again.
        self.unknown: dict[tuple[str, ...], datetime] = {}

    def sent_unanswered(self, at: datetime, request: _Request) -> None:
        if request.path == UPDATE:
            self.unknown[request.signature] = at

    def record(self, at: datetime, request: _Request) -> None:
        if request.path == REVOKE and request.recorded and request.recorded.outcome == "success":
            self.revoked_at = at
        if self.last is not None and self.last[1] != request.signature:
            self.before_other = self.last[0]
        self.last = (at, request.signature)

    def needed_again_at(self, request: _Request) -> datetime:
        """When a recorded answer last made `request`'s change needed again: a grant after a
        revocation, an update after another change was answered."""
        if request.path == GRANT:
            return self.revoked_at
        if request.path == UPDATE:
            others = [t for sig, t in self.unknown.items() if sig != request.signature]
            answered = _NEVER
            if self.last is not None:
                answered = self.last[0] if self.last[1] != request.signature else self.before_other
            return max([answered, *others])
        return _NEVER


class _Change:
    """What is known of the earlier requests with one signature, as the timeline is replayed."""

    def __init__(self) -> None:
        # the last recorded final answer: when, to which request, how
        self.answered: tuple[datetime, int, str] | None = None
        self.unanswered_at = _NEVER  # arrival of the last one that will have no recorded answer
        self.answers_to_come = 0  # earlier ones whose answer is recorded later


def _recorded(
    attempts: Sequence[Attempt], starts: Sequence[datetime], at: datetime
) -> Attempt | None:
    """The attempt spanning `at` that ended with a final answer (attempts sorted by start)."""
    i = bisect.bisect_right(starts, at)
    for attempt in reversed(attempts[max(0, i - 4) : i]):  # overlap only on a lease takeover
        if attempt.outcome in FINAL and attempt.started_at <= at <= attempt.finished_at:
            return attempt
    return None


def judge_calls(
    requests: Sequence[Mapping[str, Any]],
    attempts: Iterable[Attempt],
    inlet_grants: Sequence[Mapping[str, Any]],
    key_of: Callable[[str], str],
) -> CallFigures:
    """Double calls and legitimate repeats in the sandbox's request log.

    A request's answer counts as recorded when an attempt of the same stay spans its arrival
    and ended with a final outcome (success, or a permanent refusal): while a call is in
    flight no other call of that stay may be sent, so the attempt that spans it is the one
    that sent it. The requests' arrivals and their recorded answers are replayed in time
    order (linear in the log, which can hold a runaway loop of calls)."""
    external_of = {str(g["ReferenceId"]): str(g["externalId"]) for g in inlet_grants}
    by_key: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_key[attempt.key].append(attempt)
    for listed in by_key.values():
        listed.sort(key=lambda a: a.started_at)
    starts = {key: [a.started_at for a in listed] for key, listed in by_key.items()}

    figures = CallFigures()
    # (time, 0 for an arrival or 1 for a recorded answer, seq): arrivals first on a tie
    timeline: list[tuple[datetime, int, int, _Request]] = []
    for raw in requests:
        body = raw["body"]
        if not isinstance(body, Mapping):
            continue
        path = str(raw["path"])
        signature = _signature(path, body)
        external = (
            external_of.get(str(body.get("ReferenceId")))
            if path == REVOKE
            else body.get("externalId")
        )
        if signature is None or external is None:
            continue
        key = key_of(str(external))
        at = _when(raw["at"])
        answered = raw.get("status") is not None  # else nothing can have been recorded
        recorded = _recorded(by_key[key], starts.get(key, []), at) if answered else None
        request = _Request(int(raw["seq"]), at, path, key, signature, recorded)
        timeline.append((at, 0, request.seq, request))
        if recorded is not None:
            timeline.append((recorded.finished_at, 1, request.seq, request))
        figures.requests += 1
    timeline.sort(key=lambda item: item[:3])

    stays: dict[str, _Stay] = defaultdict(_Stay)
    changes: dict[tuple[str, ...], _Change] = defaultdict(_Change)
    for at, kind, _, request in timeline:
        stay, change = stays[request.key], changes[request.signature]
        if kind == 1:  # its answer is recorded now
            stay.record(at, request)
            assert request.recorded is not None
            change.answered = (at, request.seq, request.recorded.outcome)
            change.answers_to_come -= 1
            continue
        since = stay.needed_again_at(request)
        if change.answered is not None and change.answered[0] > since:
            done, seq, outcome = change.answered
            answer = "success" if outcome == "success" else "refusal"
            figures.double.append(
                f"{request.path.lstrip('/')} {request.key} #{request.seq}"
                f" ({(at - done).total_seconds() * 1000:.0f} ms after the attempt that"
                f" recorded #{seq}'s {answer})"
            )
        elif change.answers_to_come > 0 or change.unanswered_at > since:
            figures.repeats += 1
        if request.recorded is None:
            change.unanswered_at = at
            stay.sent_unanswered(at, request)
        else:
            change.answers_to_come += 1
    return figures


def count_by_kind(items: Iterable[str]) -> Counter[str]:
    """`GrantAccess ...` lines counted by their first word, for the table's notes."""
    return Counter(item.split(" ", 1)[0] for item in items)
