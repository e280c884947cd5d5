"""The real InletClient against the Inlet sandbox served over HTTP: grants, updates, revokes,
doors that open or not, messages, the 72-hour rule, faults and credentials."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest
from pytest_aiohttp import AiohttpServer

from inlet_bridge.doubles.inlet.sandbox import create_sandbox_app, run_sandbox
from inlet_bridge.doubles.inlet.sandbox_state import LINK_BASE
from inlet_bridge.inlet.client import InletClient
from inlet_bridge.inlet.protocol import GrantRequest, InletResult, update_from_grant

KEY = "key-oslo"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
END = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DURING = START + timedelta(hours=1)

REQUEST = GrantRequest(
    operation="code",
    partner="Acme PMS",
    booking_id="R-1001",
    external_id="acme-pms:R-1001:R-1001-1",
    locks=("L-101", "MAIN-ENTRANCE"),
    start=START,
    end=END,
    guest_name="Ola Nordmann",
    email="ola@example.no",
    phone_number="91234567",
    country_code="47",
)
SILENT = msgspec.structs.replace(REQUEST, email=None, phone_number=None, country_code=None)


class Clock:
    """The sandbox's notion of now, moved by the test instead of waited for."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sandbox:
    """A running sandbox, the client under test pointed at it, and its /_sandbox/ endpoints."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, clock: Clock) -> None:
        self.base_url = base_url
        self.session = session
        self.clock = clock
        self.inlet = InletClient(session, base_url=base_url, timeout_seconds=2.0)

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.base_url}/_sandbox/{path}", params=params) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def post(self, path: str, body: Any = None) -> Any:
        async with self.session.post(f"{self.base_url}/_sandbox/{path}", json=body) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()

    async def opens(self, code: str | None, lock: str, at: datetime = DURING) -> bool:
        assert code is not None
        answer = await self.get("opens", code=code, lock=lock, at=at.isoformat())
        return bool(answer["opens"])

    async def grant(self, request: GrantRequest = REQUEST) -> InletResult:
        return await self.inlet.grant_access(KEY, request)


MakeSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_sandbox(aiohttp_server: AiohttpServer, session: aiohttp.ClientSession) -> MakeSandbox:
    async def make(**options: Any) -> Sandbox:
        clock = Clock(NOW)
        options.setdefault("api_keys", {KEY})
        options.setdefault("rng", random.Random(1))
        server = await aiohttp_server(create_sandbox_app(clock=clock, **options))
        return Sandbox(str(server.make_url("")).rstrip("/"), session, clock)

    return make


@pytest.fixture
async def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return await make_sandbox()


async def test_grant_returns_code_and_link_and_is_idempotent_by_external_id(
    sandbox: Sandbox,
) -> None:
    first = await sandbox.grant()
    again = await sandbox.grant()
    assert first.outcome == "success"
    assert first.code is not None
    assert first.code.isdigit()
    assert 4 <= len(first.code) <= 6
    assert first.code_formatted == f"#{first.code}*"
    assert first.link is not None
    assert first.link.startswith(LINK_BASE)
    assert (again.reference_id, again.code, again.link) == (
        first.reference_id,
        first.code,
        first.link,
    )
    [grant] = await sandbox.get("grants")
    assert grant["externalId"] == REQUEST.external_id
    assert grant["ReferenceId"] == first.reference_id
    assert (grant["bookingId"], grant["partner"], grant["state"]) == (
        "R-1001",
        "Acme PMS",
        "active",
    )
    assert len(await sandbox.get("messages")) == 2  # email and SMS once, not again on the repeat

    assert (await sandbox.inlet.revoke_access(KEY, first.reference_id or "")).outcome == "success"
    renewed = await sandbox.grant()
    assert renewed.outcome == "success"
    assert renewed.reference_id != first.reference_id
    states = [g["state"] for g in await sandbox.get("grants")]
    assert states == ["revoked", "active"]


async def test_update_keeps_the_code_unless_asked_to_regenerate(sandbox: Sandbox) -> None:
    granted = await sandbox.grant()
    assert granted.reference_id is not None
    later = END + timedelta(days=1)
    longer = update_from_grant(granted.reference_id, msgspec.structs.replace(REQUEST, end=later))
    kept = await sandbox.inlet.update_access(KEY, longer)
    assert kept.outcome == "success"
    assert (kept.code, kept.link) == (granted.code, granted.link)
    [grant] = await sandbox.get("grants")
    assert datetime.fromisoformat(grant["end"]) == later
    assert len(await sandbox.get("messages")) == 2  # nothing changed for the guest

    resync = msgspec.structs.replace(longer, regenerate=True)
    renewed = await sandbox.inlet.update_access(KEY, resync)
    assert renewed.outcome == "success"
    assert renewed.reference_id == granted.reference_id
    assert renewed.code != granted.code
    assert renewed.link != granted.link
    assert not await sandbox.opens(granted.code, "L-101")
    assert await sandbox.opens(renewed.code, "L-101")
    resent = [m for m in await sandbox.get("messages") if m["reason"] == "update"]
    assert {(m["channel"], m["code"]) for m in resent} == {
        ("email", renewed.code),
        ("sms", renewed.code),
    }


async def test_a_new_email_is_messaged_without_changing_the_code(sandbox: Sandbox) -> None:
    granted = await sandbox.grant(SILENT)
    assert granted.reference_id is not None
    assert await sandbox.get("messages") == []
    with_email = msgspec.structs.replace(SILENT, email="kari@example.no")
    updated = await sandbox.inlet.update_access(
        KEY, update_from_grant(granted.reference_id, with_email)
    )
    assert updated.code == granted.code
    [message] = await sandbox.get("messages")
    assert (message["channel"], message["recipient"], message["code"]) == (
        "email",
        "kari@example.no",
        granted.code,
    )


async def test_revoked_code_stops_opening_and_a_second_revoke_is_already_gone(
    sandbox: Sandbox,
) -> None:
    granted = await sandbox.grant()
    assert granted.reference_id is not None
    assert await sandbox.opens(granted.code, "L-101")
    revoked = await sandbox.inlet.revoke_access(KEY, granted.reference_id)
    assert (revoked.outcome, revoked.http_status) == ("success", 200)
    assert not await sandbox.opens(granted.code, "L-101")
    answer = await sandbox.get(
        "opens", code=granted.code or "", lock="L-101", at=DURING.isoformat()
    )
    assert "revoked" in answer["reason"]

    again = await sandbox.inlet.revoke_access(KEY, granted.reference_id)
    assert (again.outcome, again.http_status) == ("success", 404)
    assert "already gone" in again.message
    update = await sandbox.inlet.update_access(
        KEY, update_from_grant(granted.reference_id, REQUEST)
    )
    assert (update.outcome, update.http_status) == ("permanent", 404)


@pytest.mark.parametrize(
    ("lock", "at", "opens"),
    [
        ("L-101", START, True),
        ("MAIN-ENTRANCE", END - timedelta(seconds=1), True),
        ("L-101", START - timedelta(seconds=1), False),
        ("L-101", END, False),  # the end is exclusive
        ("L-102", DURING, False),  # another guest's room
    ],
)
async def test_code_opens_only_its_locks_within_its_period(
    sandbox: Sandbox, lock: str, at: datetime, opens: bool
) -> None:
    granted = await sandbox.grant()
    assert await sandbox.opens(granted.code, lock, at) is opens
    assert await sandbox.opens(granted.code_formatted, lock, at) is opens  # keypad form too


async def test_unknown_code_opens_nothing(sandbox: Sandbox) -> None:
    await sandbox.grant()
    answer = await sandbox.get("opens", code="000000", lock="L-101", at=DURING.isoformat())
    assert answer == {"opens": False, "reason": "no grant has this code"}


async def test_replaced_lock_refuses_old_code_until_an_update_brings_a_new_one(
    sandbox: Sandbox,
) -> None:
    granted = await sandbox.grant()
    assert granted.reference_id is not None
    await sandbox.post("locks/L-101/replace")
    assert not await sandbox.opens(granted.code, "L-101")
    assert await sandbox.opens(granted.code, "MAIN-ENTRANCE")  # other locks are untouched

    updated = await sandbox.inlet.update_access(
        KEY, update_from_grant(granted.reference_id, REQUEST)
    )
    assert updated.outcome == "success"
    assert updated.code != granted.code
    assert await sandbox.opens(updated.code, "L-101")
    assert await sandbox.opens(updated.code, "MAIN-ENTRANCE")
    assert not await sandbox.opens(granted.code, "MAIN-ENTRANCE")


async def test_messages_are_recorded_only_for_given_contact_details(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(sms_locks={"L-101", "MAIN-ENTRANCE"})
    await sandbox.grant(msgspec.structs.replace(SILENT, external_id="silent"))
    assert await sandbox.get("messages") == []

    email_only = msgspec.structs.replace(SILENT, external_id="email", email="a@example.no")
    await sandbox.grant(email_only)
    no_sms_lock = msgspec.structs.replace(
        REQUEST, external_id="no-sms", email=None, locks=("L-102", "MAIN-ENTRANCE")
    )
    await sandbox.grant(no_sms_lock)
    texted = await sandbox.grant(msgspec.structs.replace(REQUEST, external_id="sms", email=None))

    messages = await sandbox.get("messages")
    assert [(m["externalId"], m["channel"], m["recipient"]) for m in messages] == [
        ("email", "email", "a@example.no"),
        ("sms", "sms", "+4791234567"),
    ]
    assert messages[1]["code"] == texted.code
    assert messages[1]["link"] == texted.link


async def test_refuses_a_start_more_than_72_hours_ahead(sandbox: Sandbox) -> None:
    early = msgspec.structs.replace(
        REQUEST, start=NOW + timedelta(hours=72, minutes=1), end=NOW + timedelta(hours=96)
    )
    refused = await sandbox.grant(early)
    assert (refused.outcome, refused.http_status) == ("permanent", 400)
    assert "72" in refused.message
    assert await sandbox.get("grants") == []

    sandbox.clock.now += timedelta(minutes=1)
    assert (await sandbox.grant(early)).outcome == "success"


async def test_fault_for_the_next_calls_then_recovery(sandbox: Sandbox) -> None:
    await sandbox.post(
        "faults",
        {"kind": "status", "status": 503, "count": 2, "operations": ["grant"], "message": "down"},
    )
    results = [await sandbox.grant() for _ in range(3)]
    assert [(r.outcome, r.http_status) for r in results] == [
        ("temporary", 503),
        ("temporary", 503),
        ("success", 200),
    ]
    assert results[0].message == "down"
    requests = await sandbox.get("requests")
    assert [(r["path"], r["status"], r["fault"]) for r in requests] == [
        ("/GrantAccess", 503, "status"),
        ("/GrantAccess", 503, "status"),
        ("/GrantAccess", 200, None),
    ]
    assert requests[0]["body"]["externalId"] == REQUEST.external_id
    assert requests[2]["response"]["ReferenceId"] == results[2].reference_id
    assert len(await sandbox.get("grants")) == 1


async def test_fault_only_hits_its_operations_and_carries_retry_after(sandbox: Sandbox) -> None:
    granted = await sandbox.grant()
    assert granted.reference_id is not None
    assert await sandbox.get("faults") == []  # a sandbox answers: it can inject faults
    await sandbox.post("faults", {"kind": "status", "status": 429, "retry_after": 60})
    armed = await sandbox.get("faults")
    assert [(a["fault"]["kind"], a["fault"]["status"], a["remaining"]) for a in armed] == [
        ("status", 429, None)
    ]
    for _ in range(2):  # without a count, the fault stays until cleared
        busy = await sandbox.grant()
        assert (busy.outcome, busy.retry_after_seconds) == ("temporary", 60.0)
    async with sandbox.session.delete(f"{sandbox.base_url}/_sandbox/faults") as resp:
        assert await resp.json() == {"cleared": 1}
    assert (await sandbox.grant()).outcome == "success"

    await sandbox.post(
        "faults",
        {"kind": "success_false", "retryable": False, "operations": ["revoke"], "message": "Nope"},
    )
    assert (await sandbox.grant()).outcome == "success"
    refused = await sandbox.inlet.revoke_access(KEY, granted.reference_id)
    assert (refused.outcome, refused.http_status, refused.message) == ("permanent", 200, "Nope")


async def test_timeout_fault_is_temporary_and_grants_nothing(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    impatient = InletClient(sandbox.session, base_url=sandbox.base_url, timeout_seconds=0.05)
    await sandbox.post("faults", {"kind": "timeout", "seconds": 30, "count": 1})
    timed_out = await impatient.grant_access(KEY, REQUEST)
    assert (timed_out.outcome, timed_out.http_status) == ("temporary", None)
    assert "timeout" in timed_out.message
    assert await sandbox.get("grants") == []
    assert (await impatient.grant_access(KEY, REQUEST)).outcome == "success"


async def test_lost_answer_fault_grants_but_answers_too_late(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    impatient = InletClient(sandbox.session, base_url=sandbox.base_url, timeout_seconds=0.05)
    await sandbox.post("faults", {"kind": "lost_answer", "seconds": 30, "count": 1})
    lost = await impatient.grant_access(KEY, REQUEST)
    assert (lost.outcome, lost.http_status) == ("temporary", None)
    (held,) = await sandbox.get("grants")  # Inlet acted before the answer was lost
    assert (held["externalId"], held["state"]) == (REQUEST.external_id, "active")
    assert await sandbox.opens(held["code"], "L-101")
    again = await impatient.grant_access(KEY, REQUEST)
    assert (again.outcome, again.reference_id, again.code) == (
        "success",
        held["ReferenceId"],
        held["code"],
    )
    requests = await sandbox.get("requests")
    assert [r["fault"] for r in requests] == ["lost_answer", None]


async def test_bad_credentials_are_permanent(sandbox: Sandbox) -> None:
    for key in ("wrong-key", ""):
        result = await sandbox.inlet.grant_access(key, REQUEST)
        assert (result.outcome, result.http_status, result.message) == (
            "permanent",
            401,
            "Invalid API key",
        )
    assert await sandbox.get("grants") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"partner": ""}, "partner"),
        ({"booking_id": " "}, "bookingId"),
        ({"locks": ()}, "locks"),
        ({"end": START}, "start"),
        ({"email": "not-an-address"}, "email"),
        ({"country_code": None}, "countryCode"),
        ({"phone_number": "12"}, "phoneNumber"),
    ],
)
async def test_invalid_grants_are_refused_naming_the_field(
    sandbox: Sandbox, change: dict[str, Any], field: str
) -> None:
    result = await sandbox.grant(msgspec.structs.replace(REQUEST, **change))
    assert (result.outcome, result.http_status) == ("permanent", 400)
    assert field in result.message


async def test_malformed_body_is_refused_naming_the_field(sandbox: Sandbox) -> None:
    body = {"operation": "code", "partner": "Acme PMS", "locks": ["L-101"]}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with sandbox.session.post(
        f"{sandbox.base_url}/GrantAccess", json=body, headers=headers
    ) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["success"] is False
    assert answer["retryable"] is False
    assert "bookingId" in answer["message"]


async def test_same_seed_gives_the_same_references_and_codes(make_sandbox: MakeSandbox) -> None:
    one, two = await make_sandbox(rng=random.Random(7)), await make_sandbox(rng=random.Random(7))
    first, second = await one.grant(), await two.grant()
    assert (first.reference_id, first.code, first.link) == (
        second.reference_id,
        second.code,
        second.link,
    )


async def test_reset_forgets_everything(sandbox: Sandbox) -> None:
    await sandbox.grant()
    await sandbox.post("faults", {"kind": "status", "status": 500})
    await sandbox.post("reset")
    assert await sandbox.get("grants") == []
    assert await sandbox.get("messages") == []
    assert await sandbox.get("requests") == []
    assert (await sandbox.grant()).outcome == "success"


async def test_run_sandbox_serves_until_cancelled(
    session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    # This sandbox runs on real time, so the booking starts soon in real time.
    soon = datetime.now(UTC) + timedelta(hours=1)
    request = msgspec.structs.replace(REQUEST, start=soon, end=soon + timedelta(days=1))
    task = asyncio.create_task(run_sandbox("127.0.0.1", unused_tcp_port, api_keys={KEY}))
    client = InletClient(
        session, base_url=f"http://127.0.0.1:{unused_tcp_port}", timeout_seconds=1.0
    )
    try:
        result = await client.grant_access(KEY, request)
        for _ in range(200):  # not a clock: the server may still be binding its port
            if result.http_status is not None:
                break
            await asyncio.sleep(0.01)
            result = await client.grant_access(KEY, request)
        assert (result.outcome, result.http_status) == ("success", 200)
        assert (await client.grant_access("wrong", request)).http_status == 401
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()
