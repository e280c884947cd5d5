"""apaleo through its emulator: notified, fetched, granted, the code written back, a repeated
notification changing nothing, a cancellation revoking.

The emulator is a real HTTP server on the stage's clock; its notifications go to the service's
receiver with basic auth, as apaleo's webhook service would send them. The checks read it from
outside (its control endpoints: the reservation's comment, where the code is written back).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inlet_bridge.certify.context import Check, Context, personal_values, redact
from inlet_bridge.certify.stage import APALEO_CONNECTION, APALEO_PROPERTY_ID, SPECTRA_PROPERTY

HOUR = timedelta(hours=1)
SOURCE = f"apaleo-{APALEO_CONNECTION}"
ROOM_DOORS = ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
CODE_LINE = "Inlet access code: "
GUEST = {
    "firstName": "Ingrid",
    "lastName": "Hansen",
    "email": "ingrid@example.no",
    "phone": "+4791234569",
}


async def _emulator(ctx: Context, method: str, path: str, body: Any = None) -> Any:
    assert ctx.stage.apaleo is not None
    response = await ctx.stage.apaleo.request(method, path, json=body)
    if response.status >= 300:
        raise RuntimeError(f"apaleo emulator {method} {path}: HTTP {response.status}")
    return await response.json() if response.content_type == "application/json" else None


async def _change(ctx: Context, what: str, reservation_id: str, body: dict[str, Any]) -> None:
    """A change made in apaleo, recorded as the data that went in."""
    await _emulator(ctx, "PUT", f"/_emulator/reservations/{reservation_id}", body)
    ctx.events.append(
        {
            "apaleo": f"PUT reservation {reservation_id}",
            "change": what,
            "body": redact(body, ctx.masker),
        }
    )


async def _notify(ctx: Context, event_type: str, reservation_id: str, **extra: Any) -> Any:
    answer = await _emulator(
        ctx, "POST", "/_emulator/notify", {"type": event_type, "entity_id": reservation_id, **extra}
    )
    ctx.events.append({"apaleo": "notification", "type": event_type, "status": answer["status"]})
    return answer


async def _comment(ctx: Context, reservation_id: str) -> str:
    raw = await _emulator(ctx, "GET", f"/_emulator/reservations/{reservation_id}")
    return str(raw.get("comment") or "")


async def reservation_lifecycle(ctx: Context) -> None:
    if ctx.stage.apaleo is None or ctx.stage.runtime.apaleo is None:
        ctx.checks.append(
            Check(
                name="whole scenario",
                status="not_run",
                detail=f"the properties have no property {SPECTRA_PROPERTY!r} for the emulator",
            )
        )
        return
    reservation_id = ctx.booking_id("1")
    ctx.booking_ids.add(reservation_id)
    ctx.bookings.add((SOURCE, reservation_id))
    ctx.personal |= personal_values(GUEST)
    arrival = (ctx.now + 2 * HOUR).replace(second=0, microsecond=0)
    departure = arrival + 48 * HOUR
    reservation = {
        "status": "Confirmed",
        "arrival": arrival.isoformat(),
        "departure": departure.isoformat(),
        "property": {"id": APALEO_PROPERTY_ID},
        "unit": {"id": f"{APALEO_PROPERTY_ID}-101", "name": "101"},
        "primaryGuest": GUEST,
        "comment": "Guest asked for a quiet room",
    }
    await _change(ctx, "new reservation", reservation_id, reservation)
    answer = await _notify(ctx, "created", reservation_id)
    ctx.check(
        "the notification is stored and answered 200",
        answer["status"] == 200,
        f"HTTP {answer['status']}",
    )
    handled = await ctx.stage.work_apaleo()
    ctx.check("one fetch reads the reservation", handled == 1, f"{handled} handled")
    grant = await ctx.grant_of(reservation_id, reservation_id, source=SOURCE)
    ctx.check("access created from the apaleo reservation", grant is not None)
    if grant is None:
        return
    ctx.check(
        "for its unit and the shared doors", grant["locks"] == ROOM_DOORS, f"{grant['locks']}"
    )
    code = grant["code"]
    await ctx.check_opens(
        "opens the room during the stay", code, "L-101", arrival + HOUR, opens=True
    )
    await ctx.check_opens("not before arrival", code, "L-101", arrival - HOUR, opens=False)
    await ctx.check_opens("not another room", code, "L-102", arrival + HOUR, opens=False)
    comment = await _comment(ctx, reservation_id)
    ctx.check(
        "the keypad code is written back to the reservation's comment, the hotel's note kept",
        comment == f"Guest asked for a quiet room\n{CODE_LINE}{grant['codeFormatted']}",
        f"{len(comment.splitlines())} comment lines",
    )

    sent = len(await ctx.inlet_calls())
    repeat = await _notify(ctx, "created", reservation_id, id=answer["notification"]["id"])
    again = await _notify(ctx, "changed", reservation_id)
    await ctx.stage.work_apaleo()
    ctx.check(
        "a repeated notification and one for an unchanged reservation change nothing",
        repeat["status"] == 200 and again["status"] == 200 and len(await ctx.inlet_calls()) == sent,
    )

    await _change(ctx, "cancelled", reservation_id, {**reservation, "status": "Canceled"})
    await _notify(ctx, "canceled", reservation_id)
    await ctx.stage.work_apaleo()
    revokes = await ctx.calls_to("/RevokeAccess")
    ctx.check(
        "access revoked at Inlet on its reference",
        [r["body"].get("ReferenceId") for r in revokes] == [grant["ReferenceId"]],
    )
    ctx.check(
        "no active access left",
        await ctx.grant_of(reservation_id, reservation_id, source=SOURCE) is None,
    )
    await ctx.check_opens(
        "the code no longer opens the room", code, "L-101", arrival + HOUR, opens=False
    )
    ctx.check(
        "the code is removed from the comment",
        await _comment(ctx, reservation_id) == "Guest asked for a quiet room",
    )
