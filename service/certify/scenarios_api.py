"""Inlet's API guide, shown: send window, required fields, validation, answers read, retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.certify.context import OLA, SOURCE, Context

HOUR = timedelta(hours=1)


async def send_window(ctx: Context) -> None:
    """Nothing goes to Inlet earlier than the window (24 h here, never more than 72 h)."""
    booking = ctx.booking_id("1")
    arrival = ctx.now + 100 * HOUR
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=arrival)])
    ctx.check("no call 100 h before arrival", not await ctx.calls_to("/GrantAccess"))
    await ctx.stage.advance(75 * HOUR)
    ctx.check("no call 25 h before arrival", not await ctx.calls_to("/GrantAccess"))
    await ctx.stage.advance(HOUR)
    calls = await ctx.calls_to("/GrantAccess")
    ctx.check("GrantAccess once the 24 h window opens", len(calls) == 1, f"{len(calls)} call(s)")
    if calls:
        lead = arrival - ctx.now
        ctx.check(
            "sent no more than 72 h before the booking starts",
            lead <= 72 * HOUR,
            f"sent {lead.total_seconds() / 3600:.1f} h before arrival",
        )


async def required_fields(ctx: Context) -> None:
    """Partner name and the booking ID the guest sees are on every call."""
    booking = ctx.booking_id("R-4711")
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=ctx.now + 2 * HOUR)])
    calls = await ctx.calls_to("/GrantAccess")
    body = calls[0]["body"] if calls else {}
    ctx.check("partner name sent", bool(body.get("partner")), f"partner={body.get('partner')!r}")
    ctx.check("booking ID is the PMS's own", body.get("bookingId") == booking)
    ctx.check(
        "phone sent as number plus country code",
        (body.get("phoneNumber"), body.get("countryCode")) == ("91234567", "47"),
    )
    stored = await ctx.stored(booking)
    grant = await ctx.grant_of(booking, "S1")
    ctx.check(
        "ReferenceId, code and link stored",
        bool(stored)
        and grant is not None
        and stored[0]["reference_id"] == grant["ReferenceId"]
        and stored[0]["code_formatted"] == grant["codeFormatted"]
        and stored[0]["link"] == grant["link"],
    )


PHONE_FIELDS = ("phoneNumber", "countryCode")
# Dropped, never refused: an invalid contact detail must not block access (PMS guide 5).
DROPPED = [
    ("email without a domain", {"email": "ola@"}, "guests[0].email", ("email",)),
    ("phone without country code", {"phone": "91234567"}, "guests[0].phone", PHONE_FIELDS),
    ("phone that is not a number", {"phone": "+47123"}, "guests[0].phone", PHONE_FIELDS),
]
REFUSED = [
    ("script in the name", {"name": "<script>x</script>"}, "guests[0].name"),
]


async def data_validation(ctx: Context) -> None:
    """Emails and phones are validated before anything is sent: an invalid one is never sent to
    Inlet and is reported as a warning, and the stay gets access all the same; other bad data
    (a name that is only markup, a timestamp without offset) refuses the event by path."""
    for index, (what, change, path, fields) in enumerate(DROPPED):
        booking = ctx.booking_id(f"DROP{index}")
        guest = {**OLA, **change}
        answer = await ctx.send(
            booking, [ctx.stay("S1", room="101", arrival=ctx.now + 2 * HOUR, guests=[guest])]
        )
        warnings = answer.get("warnings", [])
        ctx.check(
            f"{what}: reported as a warning at booking.stays[0].{path}",
            f"booking.stays[0].{path}" in [w["path"] for w in warnings],
            "; ".join(f"{w['path']}: {w['message']}" for w in warnings),
        )
        grants = [c for c in await ctx.calls_to("/GrantAccess") if _booking_of(c) == booking]
        body = grants[0]["body"] if grants else {}
        ctx.check(
            f"{what}: never sent to Inlet; access granted with the rest of the contact",
            len(grants) == 1
            and not any(body.get(f) for f in fields)
            and bool(body.get("guestName"))
            and bool(body.get("email") or body.get("phoneNumber")),
            f"{len(grants)} GrantAccess; fields sent: "
            + ", ".join(sorted(k for k in ("email", *PHONE_FIELDS) if body.get(k))),
        )
    refused: list[str] = []
    for index, (what, change, path) in enumerate(REFUSED):
        guest = {**OLA, **change}
        booking = ctx.booking_id(f"BAD{index}")
        refused.append(booking)
        answer = await ctx.send(
            booking,
            [ctx.stay("S1", room="101", arrival=ctx.now + 2 * HOUR, guests=[guest])],
            expect=422,
        )
        paths = [p["path"] for p in answer.get("problems", [])]
        ctx.check(
            f"{what}: refused at booking.stays[0].{path}",
            f"booking.stays[0].{path}" in paths,
            "; ".join(f"{p['path']}: {p['message']}" for p in answer.get("problems", [])),
        )
    naive = {
        "event_id": ctx.booking_id("NAIVE"),
        "source": SOURCE,
        "occurred_at": "2026-11-23T10:00:00",
        "booking": {"booking_id": ctx.booking_id("NAIVE"), "property_id": "oslo-1"},
    }
    refused.append(ctx.booking_id("NAIVE"))
    response = await ctx.stage.post(naive)
    problems = [p["path"] for p in (await response.json()).get("problems", [])]
    ctx.check("timestamp without offset refused", problems == ["occurred_at"], f"{problems}")
    ctx.check(
        "nothing of a refused event sent to Inlet",
        not [c for c in await ctx.inlet_calls() if _booking_of(c) in refused],
    )


def _booking_of(call: dict[str, Any]) -> Any:
    body = call.get("body")
    return body.get("bookingId") if isinstance(body, dict) else None


async def answers_read(ctx: Context) -> None:
    """A 200 whose body says success: false is a failure, escalated with Inlet's own message."""
    await ctx.stage.fault(
        kind="success_false", retryable=False, message="Lock L-101 is offline", count=1
    )
    booking = ctx.booking_id("1")
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=ctx.now + 2 * HOUR)])
    timeline = await ctx.stage.timeline(SOURCE, booking)
    calls = timeline["calls"]
    ctx.check(
        "the call is failed, not taken as a success", bool(calls) and calls[0]["state"] == "failed"
    )
    escalations = timeline["escalations"]
    ctx.check(
        "escalated with Inlet's message",
        bool(escalations) and "Lock L-101 is offline" in (escalations[0]["message"] or ""),
    )
    ctx.check("no access stored", not [g for g in timeline["grants"] if g["state"] == "active"])


async def retries(ctx: Context) -> None:
    """Temporary errors are retried every 5 minutes for at most 60 minutes, then escalated."""
    await ctx.stage.fault(kind="status", status=503)
    booking = ctx.booking_id("1")
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=ctx.now + 20 * HOUR)])
    for _ in range(14):
        await ctx.stage.advance(timedelta(minutes=5))
    timeline = await ctx.stage.timeline(SOURCE, booking)
    call = timeline["calls"][0]
    times = [a["started_at"] for a in call["attempt_log"]]
    ctx.check("13 attempts in 60 minutes (t = 0, 5, ..., 60)", len(times) == 13, f"{len(times)}")
    ctx.check("then given up and escalated", call["state"] == "failed")
    escalations = timeline["escalations"]
    ctx.check(
        "escalation names the limit reached",
        bool(escalations) and escalations[0]["reason"] == "max_duration",
    )
    await ctx.stage.sandbox.delete("/_sandbox/faults")
    await ctx.stage.advance(timedelta(minutes=30))
    ctx.check(
        "retries do not go on after the limit",
        len(await ctx.calls_to("/GrantAccess")) == 13,
    )
