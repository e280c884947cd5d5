"""Inlet's API guide, shown: send window, required fields, validation, answers read, retries."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from inlet_bridge.certify.context import OLA, PROPERTY, SOURCE, Context
from inlet_bridge.keys import HOTELS

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


async def send_window(ctx: Context) -> None:
    """Nothing goes to Inlet more than the send window before access starts: 24 h here, and
    no window may be longer than Inlet's 72 h. Shown by where bookings are placed (a booking
    100 h ahead, one just outside the window, one just inside), and on the simulated clock
    also by waiting for the first one's window to open."""
    window = timedelta(hours=ctx.stage.app[HOTELS].properties[PROPERTY].send_window_hours)
    far = ctx.booking_id("1")
    far_arrival = ctx.now + 100 * HOUR
    await ctx.send(far, [ctx.stay("S1", room="101", arrival=far_arrival)])
    ctx.check("no call 100 h before arrival", not await ctx.calls_to("/GrantAccess", far))
    due = (await ctx.stage.timeline(SOURCE, far))["due_at"]
    ctx.check(
        "its next look is when the window opens",
        due is not None and datetime.fromisoformat(due) == far_arrival - window,
        f"due_at {due}",
    )
    outside = ctx.booking_id("2")
    await ctx.send(outside, [ctx.stay("S1", room="102", arrival=ctx.now + window + 2 * MINUTE)])
    ctx.check(
        "no call 2 minutes before the window opens",
        not await ctx.calls_to("/GrantAccess", outside),
    )
    inside = ctx.booking_id("3")
    arrival = ctx.now + window - 2 * MINUTE
    await ctx.send(inside, [ctx.stay("S1", room="201", arrival=arrival)])
    calls = await ctx.calls_to("/GrantAccess", inside)
    ctx.check("GrantAccess once inside the window", len(calls) == 1, f"{len(calls)} call(s)")
    if calls:
        lead = arrival - datetime.fromisoformat(calls[0]["at"])
        ctx.check(
            "sent no more than 72 h before the booking starts",
            lead <= 72 * HOUR,
            f"sent {lead.total_seconds() / 3600:.1f} h before arrival",
        )
    if ctx.stage.wall_clock:
        ctx.not_run(
            f"booking 1 waits {(far_arrival - window - ctx.now).total_seconds() / 3600:.0f} h"
            " for its window, then goes",
            "needs the simulated clock (the in-process run); on the wall clock bookings 2 and 3"
            " show the window's edge",
        )
        return
    await ctx.stage.advance(far_arrival - window - ctx.now - HOUR)
    ctx.check("booking 1: no call 25 h before arrival", not await ctx.calls_to("/GrantAccess", far))
    await ctx.stage.advance(HOUR)
    calls = await ctx.calls_to("/GrantAccess", far)
    ctx.check(
        "booking 1: GrantAccess once its 24 h window opens",
        len(calls) == 1,
        f"{len(calls)} call(s)",
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
    """Temporary errors are retried every interval for at most the limit, then escalated
    (the properties file's [retry]: every 5 minutes for 60 minutes; on the wall clock, the
    same rule in seconds, set for the run)."""
    policy = ctx.stage.app[HOTELS].retry
    interval = timedelta(minutes=policy.interval_minutes)
    limit = timedelta(minutes=policy.max_minutes)
    await ctx.stage.fault(kind="status", status=503)
    booking = ctx.booking_id("1")
    await ctx.send(booking, [ctx.stay("S1", room="101", arrival=ctx.now + 20 * HOUR)])
    call: dict[str, Any] = {}
    for _ in range(int(limit / interval) + 2):
        await ctx.stage.advance(interval)
        call = (await ctx.stage.timeline(SOURCE, booking))["calls"][0]
        if call["state"] == "failed":
            break
    times = [datetime.fromisoformat(a["started_at"]) for a in call["attempt_log"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # On the simulated clock every retry comes exactly on time; on the wall clock it comes when
    # the workers next look (every few ms), never before it is due.
    late = timedelta(0) if not ctx.stage.wall_clock else interval / 2
    ctx.check(
        f"retried every {_span(interval)}",
        bool(gaps) and all(interval <= gap <= interval + late for gap in gaps),
        f"{len(times)} attempts, {_apart(gaps)}",
    )
    expected = int(limit / interval) + 1
    # On the wall clock each retry comes a little after it is due, so the last one, due right
    # at the limit, may fall past it: one fewer attempt, none left out.
    counts = (expected - 1, expected) if ctx.stage.wall_clock else (expected,)
    ctx.check(
        f"for at most {_span(limit)}: {' or '.join(map(str, counts))} attempts, then no more",
        bool(times)
        and times[-1] - times[0] <= limit
        and times[-1] + interval - times[0] > limit
        and len(times) in counts,
        f"{len(times)} attempts over {_span(times[-1] - times[0]) if times else '-'}",
    )
    ctx.check("then given up and escalated", call.get("state") == "failed")
    escalations = (await ctx.stage.timeline(SOURCE, booking))["escalations"]
    ctx.check(
        "escalation names the limit reached",
        bool(escalations) and escalations[0]["reason"] == "max_duration",
    )
    sent = len(await ctx.calls_to("/GrantAccess", booking))
    await ctx.stage.clear_faults()
    await ctx.stage.advance(3 * interval)
    ctx.check(
        "retries do not go on after the limit",
        len(await ctx.calls_to("/GrantAccess", booking)) == sent == len(times),
    )


def _apart(gaps: list[timedelta]) -> str:
    if not gaps:
        return "no retry"
    low, high = _span(min(gaps)), _span(max(gaps))
    return f"{low} apart" if low == high else f"{low} to {high} apart"


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{round(seconds, 2):g} s"
