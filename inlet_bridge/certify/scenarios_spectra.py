"""Spectra PMS through its emulator: a reservation polled, its code written back, a cancellation.

The emulator is a real HTTP server on the stage's clock; the checks read it from outside (its
control endpoints: the reservation codes the bridge posted and disabled), as they read Inlet.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from inlet_bridge.certify.context import Check, Context, redact
from inlet_bridge.certify.stage import SPECTRA_CONNECTION, SPECTRA_PROPERTY
from inlet_bridge.keys import HOTELS

HOUR = timedelta(hours=1)
SOURCE = f"spectra-{SPECTRA_CONNECTION}"
ROOM_DOORS = ["L-202", "MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2"]
GUEST = {
    "firstName": "Kari",
    "lastName": "Nordmann",
    "email": "kari@example.no",
    "mobile": "+4791234568",
}


def _wall(at: datetime, zone: ZoneInfo) -> str:
    """A time as Spectra writes it: hotel wall-clock time, no offset."""
    return at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


async def _emulator(ctx: Context, method: str, path: str, body: Any = None) -> Any:
    assert ctx.stage.spectra is not None
    response = await ctx.stage.spectra.request(method, path, json=body)
    if response.status >= 300:
        raise RuntimeError(f"Spectra emulator {method} {path}: HTTP {response.status}")
    return await response.json() if response.content_type == "application/json" else None


async def _codes(ctx: Context, guid: str) -> dict[str, list[str]]:
    codes: dict[str, dict[str, list[str]]] = await _emulator(ctx, "GET", "/_emulator/codes")
    return codes.get(guid, {"posted": [], "disabled": []})


async def _change(ctx: Context, what: str, method: str, path: str, body: Any) -> None:
    """A change made in Spectra, recorded as the data that went in."""
    await _emulator(ctx, method, path, body)
    ctx.events.append(
        {"spectra": f"{method} {path}", "change": what, "body": redact(body, ctx.masker)}
    )


async def reservation_lifecycle(ctx: Context) -> None:
    if ctx.stage.spectra is None or ctx.stage.spectra_poller is None:
        ctx.checks.append(
            Check(
                name="whole scenario",
                status="not_run",
                detail=f"the properties have no property {SPECTRA_PROPERTY!r} for the emulator",
            )
        )
        return
    zone = ctx.stage.app[HOTELS].properties[SPECTRA_PROPERTY].timezone
    booking = ctx.booking_id("1")
    ctx.booking_ids.add(booking)
    ctx.bookings.add((SOURCE, booking))
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"inlet-bridge-certify/{booking}"))
    arrival = (ctx.now + 2 * HOUR).replace(second=0, microsecond=0)
    departure = arrival + 48 * HOUR
    reservation = {
        "reservationNumber": booking,
        "status": "Confirmed",
        "arrival": _wall(arrival, zone),
        "departure": _wall(departure, zone),
        "roomNumber": "202",
        "guests": [GUEST],
    }
    await _change(ctx, "new reservation", "PUT", f"/_emulator/reservations/{guid}", reservation)

    report = await ctx.stage.poll_spectra()
    ctx.check("one poll reads the reservation", report.appended == 1, f"{report.appended} stored")
    grant = await ctx.grant_of(booking, guid, source=SOURCE)
    ctx.check("access created from the Spectra reservation", grant is not None)
    if grant is None:
        return
    ctx.check(
        "for its room and the shared doors", grant["locks"] == ROOM_DOORS, f"{grant['locks']}"
    )
    code = grant["code"]
    await ctx.check_opens(
        "opens the room during the stay", code, "L-202", arrival + HOUR, opens=True
    )
    await ctx.check_opens("not before arrival", code, "L-202", arrival - HOUR, opens=False)
    await ctx.check_opens("not after departure", code, "L-202", departure + HOUR, opens=False)
    await ctx.check_opens("not another room", code, "L-201", arrival + HOUR, opens=False)
    written = await _codes(ctx, guid)
    ctx.check(
        "the keypad code is written back to the Spectra reservation",
        written == {"posted": [grant["codeFormatted"]], "disabled": []},
        f"{len(written['posted'])} posted, {len(written['disabled'])} disabled",
    )
    sent = len(await ctx.inlet_calls())
    again = await ctx.stage.poll_spectra()
    ctx.check(
        "polling again changes nothing",
        again.appended == 0 and len(await ctx.inlet_calls()) == sent,
    )

    await _change(
        ctx,
        "cancelled",
        "POST",
        f"/_emulator/reservations/{guid}/status",
        {"status": "Cancelled"},
    )
    report = await ctx.stage.poll_spectra()
    ctx.check("the next poll reads the cancellation", report.appended == 1)
    revokes = await ctx.calls_to("/RevokeAccess")
    ctx.check(
        "access revoked at Inlet on its reference",
        [r["body"].get("ReferenceId") for r in revokes] == [grant["ReferenceId"]],
    )
    ctx.check(
        "no active access left",
        await ctx.grant_of(booking, guid, source=SOURCE) is None,
    )
    await ctx.check_opens(
        "the code no longer opens the room", code, "L-202", arrival + HOUR, opens=False
    )
    written = await _codes(ctx, guid)
    ctx.check(
        "the code is disabled in Spectra",
        written == {"posted": [grant["codeFormatted"]], "disabled": [grant["codeFormatted"]]},
        f"{len(written['posted'])} posted, {len(written['disabled'])} disabled",
    )
