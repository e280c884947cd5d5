"""Which GrantAccess calls of a booking's grants may have left a grant at Inlet? Their history.

Since Inlet last confirmed each grant's revocation: every GrantAccess call (pending, superseded,
failed or succeeded), its request, generation and attempts, as far as their outcomes are known.
The plan reads it to recover a grant an unanswered call may have made, and the call worker to
know whether a success shows what Inlet holds (`fingerprint_after_grant`).
"""

from __future__ import annotations

import msgspec
from asyncpg import Record

from service.domain.access import DesiredGrant
from service.domain.plan import EarlierGrantAttempt, GrantCall
from service.store.db import Connection, Database


async def grant_history(
    db: Database,
    conn: Connection,
    source: str,
    booking_id: str,
    *,
    grant_key: str | None = None,
    before_call: int | None = None,
) -> dict[str, tuple[GrantCall, ...]]:
    """The calls of every grant of the booking (or of `grant_key`, before call `before_call`)."""
    rows = await conn.fetch(
        db.sql("earlier_grant_attempts"), grant_key, before_call, source, booking_id
    )
    return grant_calls(rows)


def grant_calls(rows: list[Record]) -> dict[str, tuple[GrantCall, ...]]:
    """Rows of `earlier_grant_attempts` (ordered by grant, call and attempt) as calls per grant."""
    calls: dict[str, list[GrantCall]] = {}
    for r in rows:
        of_grant = calls.setdefault(r["grant_key"], [])
        attempt = EarlierGrantAttempt(
            fingerprint=r["fingerprint"], outcome=r["outcome"], http_status=r["http_status"]
        )
        if of_grant and of_grant[-1].call_id == r["call_id"]:
            last = of_grant[-1]
            of_grant[-1] = msgspec.structs.replace(last, attempts=(*last.attempts, attempt))
        else:
            request = msgspec.json.decode(r["request"], type=DesiredGrant)
            of_grant.append(
                GrantCall(
                    call_id=r["call_id"],
                    request=request,
                    attempts=(attempt,),
                    generation=r["generation"],
                )
            )
    return {key: tuple(value) for key, value in calls.items()}
