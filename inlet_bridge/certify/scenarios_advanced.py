"""Inlet's advanced scenarios (4.1 to 4.4), the communication table (5) and failures (6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inlet_bridge.certify.context import KARI, OLA, PER, SOURCE, Context
from inlet_bridge.keys import HOTELS

HOUR = timedelta(hours=1)
ORGANIZER = {"name": "Siri Lund", "email": "siri@example.no", "phone": "+4791234570"}


async def group_multi_room(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + 2 * HOUR
    rooms = {"S1": ("101", OLA), "S2": ("102", KARI), "S3": ("201", PER)}
    stays = [ctx.stay(s, room=r, arrival=arrival, guests=[g]) for s, (r, g) in rooms.items()]
    await ctx.send(booking, stays, booking_type="group", organizer=ORGANIZER)
    grants = {s: await ctx.grant_of(booking, s) for s in rooms}
    ctx.check(
        "one grant per room", all(grants.values()) and len(await ctx.calls_to("/GrantAccess")) == 3
    )
    during = arrival + HOUR
    for stay_id, (room, _) in rooms.items():
        code = (grants[stay_id] or {}).get("code")
        await ctx.check_opens(
            f"{stay_id}'s code opens room {room}", code, f"L-{room}", during, opens=True
        )
        for other_id, (other, _) in rooms.items():
            if other_id != stay_id:
                await ctx.check_opens(
                    f"{stay_id}'s code does not open room {other}",
                    code,
                    f"L-{other}",
                    during,
                    opens=False,
                )
    ctx.check(
        "each grant traceable to its booking and room (externalId)",
        all(
            g is not None and g["externalId"] == f"{SOURCE}:{booking}:{s}"
            for s, g in grants.items()
        ),
    )
    stays[1]["status"] = "cancelled"
    await ctx.send(booking, stays, booking_type="group", organizer=ORGANIZER)
    ctx.check("a cancelled room loses access", await ctx.grant_of(booking, "S2") is None)
    ctx.check(
        "the other rooms keep theirs",
        all([await ctx.grant_of(booking, "S1"), await ctx.grant_of(booking, "S3")]),
    )


async def group_advance(ctx: Context) -> None:
    group = ctx.booking_id("G")
    private = ctx.booking_id("P")
    arrival = ctx.now + 60 * HOUR
    await ctx.send(
        group,
        [ctx.stay("S1", room="201", arrival=arrival)],
        booking_type="group",
        organizer=ORGANIZER,
    )
    await ctx.send(private, [ctx.stay("S1", room="202", arrival=arrival)])
    ctx.check(
        "a group 60 h ahead gets codes now (group window 72 h)",
        await ctx.grant_of(group, "S1") is not None,
    )
    ctx.check(
        "a private booking 60 h ahead waits (24 h window)",
        await ctx.grant_of(private, "S1") is None,
    )
    lead = arrival - ctx.now
    ctx.check(
        "the group's codes were sent within 72 h of arrival",
        lead <= 72 * HOUR,
        f"{lead.total_seconds() / 3600:.0f} h ahead",
    )


async def common_doors(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + HOUR
    await ctx.send(booking, [ctx.stay("S1", room="201", arrival=arrival, hours=24)])
    grant = await ctx.grant_of(booking, "S1")
    code = (grant or {}).get("code")
    ctx.check(
        "room, main and night entrance and floor door",
        grant is not None
        and grant["locks"] == ["L-201", "MAIN-ENTRANCE", "NIGHT-ENTRANCE", "FLOOR-2"],
    )
    await ctx.check_opens(
        "main entrance during the stay", code, "MAIN-ENTRANCE", arrival + HOUR, opens=True
    )
    await ctx.check_opens(
        "not after the stay", code, "MAIN-ENTRANCE", arrival + 25 * HOUR, opens=False
    )
    await ctx.send(
        booking, [ctx.stay("S1", room="201", arrival=arrival, hours=24, status="cancelled")]
    )
    await ctx.check_opens(
        "removed with the cancellation", code, "MAIN-ENTRANCE", arrival + HOUR, opens=False
    )


async def meeting_room(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    start = ctx.now + 3 * HOUR
    room = [ctx.stay("F1", room="Fjord", arrival=start, hours=2, guests=[KARI])]
    await ctx.send(booking, room, booking_type="company", company="Acme Consulting AS")
    grant = await ctx.grant_of(booking, "F1")
    code = (grant or {}).get("code")
    ctx.check(
        "meeting room mapped to its access point",
        grant is not None and grant["locks"][0] == "L-FJORD",
    )
    await ctx.check_opens(
        "opens during the booked hours", code, "L-FJORD", start + HOUR, opens=True
    )
    await ctx.check_opens("not before", code, "L-FJORD", start - HOUR, opens=False)
    await ctx.check_opens("not after", code, "L-FJORD", start + 3 * HOUR, opens=False)
    moved = [ctx.stay("F1", room="Fjord", arrival=start + 2 * HOUR, hours=2, guests=[KARI])]
    await ctx.send(booking, moved, booking_type="company", company="Acme Consulting AS")
    await ctx.check_opens(
        "moved hours: opens at the new time", code, "L-FJORD", start + 3 * HOUR, opens=True
    )
    moved[0]["status"] = "cancelled"
    await ctx.send(booking, moved, booking_type="company", company="Acme Consulting AS")
    ctx.check("cancelled: revoked", await ctx.grant_of(booking, "F1") is None)


async def communication(ctx: Context) -> None:
    arrival = ctx.now + 2 * HOUR
    cases: list[tuple[str, str, dict[str, Any], str | None, str]] = [
        ("private", "101", {}, OLA["email"], "the guest"),
        ("company", "102", {"company": "Acme Consulting AS"}, OLA["email"], "the named guest"),
        ("agency", "201", {}, None, "nobody"),
        ("group", "202", {"organizer": ORGANIZER}, ORGANIZER["email"], "the organizer"),
    ]
    for booking_type, room, extra, recipient, who in cases:
        booking = ctx.booking_id(booking_type.upper())
        await ctx.send(
            booking,
            [ctx.stay("S1", room=room, arrival=arrival)],
            booking_type=booking_type,
            **extra,
        )
        sent = await ctx.last_sent(booking, "S1")
        ctx.check(
            f"{booking_type}: messages go to {who}",
            await ctx.grant_of(booking, "S1") is not None and sent.get("email") == recipient,
            f"email sent to Inlet: {'yes' if sent.get('email') else 'no'}",
        )


async def failed_revocation(ctx: Context) -> None:
    booking = ctx.booking_id("1")
    arrival = ctx.now + HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    await ctx.stage.fault(kind="status", status=503, operations=["revoke"])
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival, status="cancelled")])
    policy = ctx.stage.app[HOTELS].retry
    interval = timedelta(minutes=policy.interval_minutes)
    escalations: list[dict[str, Any]] = []
    # The retry rule runs its course (60 minutes of 5, or its wall-clock rule in seconds).
    for _ in range(int(policy.max_minutes / policy.interval_minutes) + 2):
        await ctx.stage.advance(interval)
        timeline = await ctx.stage.timeline(SOURCE, booking)
        escalations = [e for e in timeline["escalations"] if e["operation"] == "revoke"]
        if escalations:
            break
    ctx.check(
        "the failed revocation is escalated as critical",
        bool(escalations) and escalations[0]["severity"] == "critical",
    )
    metrics = await (await ctx.stage.service.get("/metrics")).text()
    ctx.check(
        "the page alert's series is raised (InletBridgeRevocationEscalated)",
        'inlet_bridge_escalations_open{operation="revoke",property="oslo-1",severity="critical"} 1.0'
        in metrics,
    )
    await ctx.stage.clear_faults()
    escalation_id = escalations[0]["id"] if escalations else 0
    retry = await ctx.stage.service.post(
        f"/v1/escalations/{escalation_id}/retry",
        json={"note": "lock gateway back"},
        headers=ctx.stage.admin_headers,
    )
    await ctx.stage.settle()
    ctx.check(
        "an operator's retry revokes the access",
        retry.status == 200 and await ctx.grant_of(booking, "S1") is None,
    )
