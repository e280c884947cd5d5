"""Which GrantAccess calls of a booking's grants may have left a grant at Inlet? Their history.

Since Inlet last confirmed each grant's revocation: every GrantAccess call (pending, superseded,
failed or succeeded), its request, generation and attempts, as far as their outcomes are known.
The plan reads it to recover a grant an unanswered call may have made, and the call worker to
know whether a success shows what Inlet holds (`fingerprint_after_grant`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from asyncpg import Record

from inlet_bridge.domain.access import DesiredGrant
from inlet_bridge.domain.plan import EarlierGrantAttempt, GrantCall
from inlet_bridge.store.db import Connection, Database


async def grant_history(
    db: Database, conn: Connection, *, grant_key: str, before_call: int
) -> tuple[GrantCall, ...]:
    """The GrantAccess calls of `grant_key` before call `before_call` (the reconciler reads a
    whole batch's with `bookings_grant_history`)."""
    rows = await db.on(conn).fetch(
        "earlier_grant_attempts", grant_key=grant_key, before_call=before_call
    )
    return grant_calls(rows).get(grant_key, ())


def grant_calls(rows: Sequence[Record]) -> dict[str, tuple[GrantCall, ...]]:
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
