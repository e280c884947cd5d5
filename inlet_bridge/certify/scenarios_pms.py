"""Inlet's PMS certification scenarios 3.1 to 3.9, shown against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta

from inlet_bridge.certify.context import KARI, OLA, SOURCE, Context

HOUR = timedelta(hours=1)
ROOM_DOORS = ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]


async def standard(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + 2 * HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    grant = await ctx.grant_of(booking, "S1")
    ctx.check("access created", grant is not None)
    if grant is None:
        return
    ctx.check(
        "for the room and its shared doors", grant["locks"] == ROOM_DOORS, f"{grant['locks']}"
    )
    code = grant["code"]
    await ctx.check_opens(
        "code opens the room during the stay", code, "L-101", arrival + HOUR, opens=True
    )
    await ctx.check_opens("not before the stay", code, "L-101", arrival - HOUR, opens=False)
    await ctx.check_opens("not after the stay", code, "L-101", arrival + 49 * HOUR, opens=False)
    await ctx.on_sandbox(
        "SMS and email sent to the guest", lambda: _messaged(ctx, booking, {"sms", "email"})
    )
    stored = await ctx.stored(booking)
    ctx.check(
        "reference, code and link stored",
        stored[0]["reference_id"] == grant["ReferenceId"] and stored[0]["code"] == code,
    )


async def company(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    await ctx.send(
        booking,
        [ctx.stay("S1", room="102", arrival=ctx.now + 2 * HOUR, guests=[KARI])],
        booking_type="company",
        company="Acme Consulting AS",
    )
    grant = await ctx.grant_of(booking, "S1")
    ctx.check(
        "access for the named guest's room", grant is not None and grant["locks"][0] == "L-102"
    )
    sent = await ctx.last_sent(booking, "S1")
    ctx.check("sent to the named guest", sent.get("email") == KARI["email"])
    await ctx.on_sandbox(
        "the named guest is messaged", lambda: _messaged(ctx, booking, {"sms", "email"})
    )
    silent = ctx.booking_id("2")
    await ctx.send(
        silent,
        [ctx.stay("S1", room="201", arrival=ctx.now + 2 * HOUR, guests=[{"name": "Jon Berg"}])],
        booking_type="company",
        company="Acme Consulting AS",
    )
    ctx.check(
        "a guest without contact details still gets access",
        await ctx.grant_of(silent, "S1") is not None,
    )
    issues = (await ctx.stage.timeline(SOURCE, silent))["desired"]["issues"]
    ctx.check(
        "and the missing contact shows in the timeline",
        [i["kind"] for i in issues] == ["no_contact"],
    )


async def agency(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    await ctx.send(
        booking, [ctx.stay("S1", room="202", arrival=ctx.now + 2 * HOUR)], booking_type="agency"
    )
    calls = await ctx.calls_to("/GrantAccess")
    body = calls[0]["body"] if calls else {}
    ctx.check("access created", await ctx.grant_of(booking, "S1") is not None)
    ctx.check("no email or phone sent to Inlet", not ({"email", "phoneNumber"} & body.keys()))
    await ctx.on_sandbox("no SMS or email to the guest", lambda: _messaged(ctx, booking, set()))
    access = await ctx.stage.service.get(
        f"/v1/bookings/{SOURCE}/{booking}/access", headers=ctx.stage.source_headers
    )
    stays = (await access.json())["stays"]
    ctx.check(
        "code and link available to the PMS through the access API",
        bool(stays) and bool(stays[0]["code_formatted"]) and bool(stays[0]["link"]),
    )


async def updates(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + 2 * HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    first = await ctx.grant_of(booking, "S1")
    renamed = {**OLA, "name": "Ola J. Nordmann"}
    new_phone = {**renamed, "phone": "+4798765432"}
    changes = [
        ("dates", OLA),
        ("guest name", renamed),
        ("phone", new_phone),
        ("email", {**new_phone, "email": "ola.j@example.no"}),
    ]
    for what, guest in changes:
        moved = ctx.stay("S1", room="101", arrival=arrival + HOUR, guests=[guest])
        await ctx.send(booking, [moved])
        updates = await ctx.calls_to("/UpdateAccess")
        ctx.check(
            f"{what} change: UpdateAccess on the same reference",
            bool(updates)
            and first is not None
            and updates[-1]["body"]["ReferenceId"] == first["ReferenceId"],
        )
    ctx.check("never a second grant", len(await ctx.calls_to("/GrantAccess")) == 1)
    final = await ctx.grant_of(booking, "S1")
    ctx.check(
        "final access matches the latest booking",
        final is not None
        and (await ctx.last_sent(booking, "S1")).get("email") == "ola.j@example.no"
        and (await ctx.last_sent(booking, "S1")).get("phoneNumber") == "98765432"
        and datetime.fromisoformat(final["start"]) == arrival + HOUR,
    )
    stored = await ctx.stored(booking)
    ctx.check(
        "stored access matches Inlet's", final is not None and stored[0]["code"] == final["code"]
    )


async def resync(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    before = await ctx.grant_of(booking, "S1")
    if ctx.has_sandbox:
        await ctx.stage.sandbox.post("/_sandbox/locks/L-101/replace")
        old = before["code"] if before else None
        await ctx.check_opens(
            "after a lock replacement the old code fails", old, "L-101", arrival + HOUR, opens=False
        )
    dry = await ctx.stage.service.post(
        "/v1/resync",
        json={"selector": {"bookings": [f"{SOURCE}:{booking}"]}},
        headers=ctx.stage.admin_headers,
    )
    ctx.check(
        "the affected bookings are identified (dry run)", (await dry.json()).get("matched") == 1
    )
    await ctx.stage.service.post(
        "/v1/resync",
        json={"selector": {"bookings": [f"{SOURCE}:{booking}"]}, "dry_run": False},
        headers=ctx.stage.admin_headers,
    )
    await ctx.stage.settle()
    updates = await ctx.calls_to("/UpdateAccess")
    ctx.check(
        "UpdateAccess sent asking for new access",
        bool(updates) and updates[-1]["body"].get("regenerate") is True,
    )
    after = await ctx.grant_of(booking, "S1")
    new = after["code"] if after else None
    ctx.check(
        "a new code was returned and stored",
        before is not None
        and new != before["code"]
        and (await ctx.stored(booking))[0]["code"] == new,
    )
    await ctx.check_opens("the new code opens the door", new, "L-101", arrival + HOUR, opens=True)


async def check_in_out(ctx: Context) -> None:
    """The guest arrived an hour ago: the PMS's check-in changes nothing, its check-out
    revokes at once."""
    booking = ctx.booking_id("1")
    arrival = ctx.now - HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    grant = await ctx.grant_of(booking, "S1")
    code = grant["code"] if grant else None
    ctx.check(
        "access starts at the booking's arrival (rule: booking_time)",
        grant is not None and datetime.fromisoformat(grant["start"]) == arrival,
    )
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival, status="checked_in")])
    ctx.check("check-in changes nothing that was right", not await ctx.calls_to("/UpdateAccess"))
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival, status="checked_out")])
    ctx.check(
        "check-out revokes (checked_out is a revoking status)",
        len(await ctx.calls_to("/RevokeAccess")) == 1,
    )
    await ctx.check_opens(
        "the code no longer opens the door", code, "L-101", ctx.now + HOUR, opens=False
    )


async def room_change(ctx: Context) -> None:
    for when, label in ((2 * HOUR, "before arrival"), (-HOUR, "after check-in")):
        booking = ctx.booking_id("A" if when > timedelta(0) else "B")
        arrival = ctx.now + when
        status = "confirmed" if when > timedelta(0) else "checked_in"
        await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival, status=status)])
        first = await ctx.grant_of(booking, "S1")
        await ctx.send(booking, [ctx.stay("S1", room="202", arrival=arrival, status=status)])
        grant = await ctx.grant_of(booking, "S1")
        code = grant["code"] if grant else None
        during = max(arrival, ctx.now) + HOUR
        ctx.check(
            f"{label}: access moved to the new room",
            grant is not None and "L-202" in grant["locks"] and "L-101" not in grant["locks"],
        )
        ctx.check(
            f"{label}: same reference (updated, no duplicate)",
            first is not None
            and grant is not None
            and grant["ReferenceId"] == first["ReferenceId"],
        )
        await ctx.check_opens(
            f"{label}: the code opens the new room", code, "L-202", during, opens=True
        )
        await ctx.check_opens(f"{label}: and not the old one", code, "L-101", during, opens=False)
        stored = await ctx.stored(booking)
        ctx.check(f"{label}: stored access updated", "L-202" in stored[0]["access_points"])


async def cancellation(ctx: Context) -> None:
    for label, change in (
        ("cancelled", {"status": "cancelled"}),
        ("no-show", {"status": "no_show"}),
        ("deleted", {"deleted": True}),
    ):
        booking = ctx.booking_id(label.upper())
        arrival = ctx.now + HOUR
        await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
        grant = await ctx.grant_of(booking, "S1")
        code = grant["code"] if grant else None
        status = change.get("status", "confirmed")
        extra = {"deleted": True} if "deleted" in change else {}
        await ctx.send(
            booking, [ctx.stay("S1", room="101", arrival=arrival, status=str(status))], **extra
        )
        ctx.check(f"{label}: access revoked", await ctx.grant_of(booking, "S1") is None)
        await ctx.check_opens(
            f"{label}: the code no longer opens the door",
            code,
            "L-101",
            arrival + HOUR,
            opens=False,
        )
        timeline = await ctx.stage.timeline(SOURCE, booking)
        ctx.check(
            f"{label}: traceable in the timeline",
            [c["operation"] for c in timeline["calls"]] == ["grant", "revoke"],
        )


async def early_late(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + 4 * HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival, hours=20)])
    code = (await ctx.grant_of(booking, "S1") or {}).get("code")
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival - 2 * HOUR, hours=26)])
    await ctx.check_opens(
        "early check-in: opens 1 h before the old arrival",
        code,
        "L-101",
        arrival - HOUR,
        opens=True,
    )
    await ctx.check_opens(
        "late check-out: opens 3 h after the old departure",
        code,
        "L-101",
        arrival + 23 * HOUR,
        opens=True,
    )
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival - 2 * HOUR, hours=12)])
    await ctx.check_opens(
        "shortened stay: no longer opens after the new departure",
        code,
        "L-101",
        arrival + 11 * HOUR,
        opens=False,
    )
    ctx.check("each change an UpdateAccess", len(await ctx.calls_to("/UpdateAccess")) == 2)


async def _not(result: Awaitable[bool]) -> bool:
    return not await result


async def _messaged(ctx: Context, booking: str, channels: set[str]) -> bool:
    prefix = f"{SOURCE}:{booking}:"
    sent = {m["channel"] for m in await ctx.stage.messages() if m["externalId"].startswith(prefix)}
    return sent == channels
