"""The Inlet client turns every answer, and every missing answer, into the right outcome,
and never logs personal data."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgspec
import pytest
from aioresponses import aioresponses
from yarl import URL

from inlet_bridge.inlet.client import InletClient
from inlet_bridge.inlet.protocol import (
    MESSAGE_LIMIT,
    CallKind,
    GrantRequest,
    InletPaths,
    UpdateRequest,
    classify,
    parse_retry_after,
    split_phone,
    update_from_grant,
)

BASE = "https://inlet.test"
GRANT_URL = f"{BASE}/GrantAccess"
OSLO = timezone(timedelta(hours=1))

REQUEST = GrantRequest(
    operation="code",
    partner="Acme PMS",
    booking_id="R-1001",
    external_id="acme-pms:R-1001:R-1001-1",
    locks=("L-101", "MAIN-ENTRANCE"),
    start=datetime(2026, 11, 23, 15, tzinfo=OSLO),
    end=datetime(2026, 11, 25, 11, tzinfo=OSLO),
    guest_name="Ola Nordmann",
    email="ola@example.no",
    phone_number="91234567",
    country_code="47",
)


class _Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the `stream_writer` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289); supply a stand-in until a release fixes it."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class _Mocked(aioresponses):
    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _Response)
        super().add(*args, **kwargs)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with _Mocked() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[InletClient]:
    async with aiohttp.ClientSession() as session:
        yield InletClient(session, base_url=BASE + "/", timeout_seconds=2.0)


# -- the wire format ------------------------------------------------------------------------


def test_grant_request_uses_inlet_field_names_and_omits_missing_contact() -> None:
    wire = msgspec.json.decode(msgspec.json.encode(REQUEST))
    assert wire == {
        "operation": "code",
        "partner": "Acme PMS",
        "bookingId": "R-1001",
        "externalId": "acme-pms:R-1001:R-1001-1",
        "locks": ["L-101", "MAIN-ENTRANCE"],
        "start": "2026-11-23T15:00:00+01:00",
        "end": "2026-11-25T11:00:00+01:00",
        "guestName": "Ola Nordmann",
        "email": "ola@example.no",
        "phoneNumber": "91234567",
        "countryCode": "47",
    }
    silent = msgspec.structs.replace(REQUEST, email=None, phone_number=None, country_code=None)
    wire = msgspec.json.decode(msgspec.json.encode(silent))
    assert not {"email", "phoneNumber", "countryCode"} & wire.keys()


def test_update_request_carries_reference_and_regenerate_only_when_asked() -> None:
    plain = msgspec.json.decode(msgspec.json.encode(update_from_grant("ref-1", REQUEST)))
    assert plain["ReferenceId"] == "ref-1"
    assert "regenerate" not in plain
    assert plain["externalId"] == REQUEST.external_id
    resync = update_from_grant("ref-1", REQUEST, regenerate=True)
    assert msgspec.json.decode(msgspec.json.encode(resync))["regenerate"] is True


def test_request_naive_datetimes_are_refused_on_decode() -> None:
    body = msgspec.json.encode(REQUEST).replace(b"+01:00", b"")
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        msgspec.json.decode(body, type=GrantRequest)


def test_repr_hides_personal_data_and_codes() -> None:
    text = repr(REQUEST)
    for secret in ("Ola", "ola@example.no", "91234567"):
        assert secret not in text
    assert "R-1001" in text
    result = classify(200, b'{"success":true,"ReferenceId":"r","code":"4711","link":"https://x/a"}')
    assert "4711" not in repr(result)
    assert "https://x/a" not in repr(result)


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+4791234567", ("91234567", "47")),
        ("+46701234567", ("701234567", "46")),
        ("+14155552671", ("4155552671", "1")),
        ("+390612345678", ("0612345678", "39")),  # Italy keeps its leading zero
        ("+447911123456", ("7911123456", "44")),
    ],
)
def test_split_phone(e164: str, expected: tuple[str, str]) -> None:
    assert split_phone(e164) == expected


@pytest.mark.parametrize("bad", ["91234567", "+", "+47", "+47abc", "", "+999123456789"])
def test_split_phone_refuses_non_e164(bad: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        split_phone(bad)


# -- classify -------------------------------------------------------------------------------

OK = b'{"success":true,"message":"Access granted","ReferenceId":"ref-1","code":"1234","codeFormatted":"#1234*","link":"https://l/a"}'


def _fail(message: str, retryable: bool | None = None) -> bytes:
    body: dict[str, object] = {"success": False, "message": message}
    if retryable is not None:
        body["retryable"] = retryable
    return msgspec.json.encode(body)


@pytest.mark.parametrize(
    ("status", "body", "call", "outcome", "message"),
    [
        (200, OK, "grant", "success", "Access granted"),
        (201, OK, "grant", "success", "Access granted"),
        (None, None, "grant", "temporary", "no response from Inlet"),
        (500, _fail("boom"), "grant", "temporary", "boom"),
        (
            503,
            b"<html>Service Unavailable</html>",
            "grant",
            "temporary",
            "HTTP 503 with an unreadable response",
        ),
        (502, b"", "update", "temporary", "HTTP 502 with an unreadable response"),
        (429, _fail("slow down"), "grant", "temporary", "slow down"),
        (408, b"", "grant", "temporary", "HTTP 408 with an unreadable response"),
        (400, _fail("locks is required"), "grant", "permanent", "locks is required"),
        (401, _fail("Invalid API key"), "grant", "permanent", "Invalid API key"),
        (404, _fail("Unknown ReferenceId"), "update", "permanent", "Unknown ReferenceId"),
        (422, b"not json", "grant", "permanent", "HTTP 422 with an unreadable response"),
        (302, b"", "grant", "permanent", "HTTP 302 with an unreadable response"),
        # retryable in the body overrides the status
        (400, _fail("lock busy", retryable=True), "grant", "temporary", "lock busy"),
        (503, _fail("no", retryable=False), "grant", "permanent", "no"),
        # a 200 is not a success unless the body says so
        (200, _fail("x", retryable=True), "grant", "temporary", "x"),
        (200, _fail("Lock not found", retryable=False), "grant", "permanent", "Lock not found"),
        (200, _fail("Lock not found"), "grant", "permanent", "Lock not found"),
        (200, b"<html>", "grant", "temporary", "unreadable response"),
        (200, b"", "revoke", "temporary", "unreadable response"),
        (200, b"[1, 2]", "grant", "temporary", "unreadable response"),
        (200, b'{"success":"yes"}', "grant", "temporary", "unreadable response"),
        (200, b'{"message":"hm"}', "grant", "temporary", "hm"),
        (200, b'{"success":true}', "grant", "temporary", "success without ReferenceId"),
        (200, b'{"success":true}', "update", "success", "OK"),
        (500, b'{"success":true}', "grant", "temporary", "HTTP 500"),
        # revoke: 404 means already gone
        (404, _fail("Gone", retryable=False), "revoke", "success", "already gone: Gone"),
        (404, b"", "revoke", "success", "already gone"),
        (404, b"", "grant", "permanent", "HTTP 404 with an unreadable response"),
        (200, b'{"success":true,"x":1}', "revoke", "success", "OK"),  # unknown fields ignored
    ],
)
def test_classify(
    status: int | None, body: bytes | None, call: CallKind, outcome: str, message: str
) -> None:
    result = classify(status, body, call=call)
    assert result.outcome == outcome
    assert result.http_status == status
    assert result.message == message


def test_classify_success_keeps_reference_code_and_link() -> None:
    result = classify(200, OK)
    assert (result.reference_id, result.code, result.code_formatted, result.link) == (
        "ref-1",
        "1234",
        "#1234*",
        "https://l/a",
    )


def test_classify_accepts_numbers_where_strings_are_expected() -> None:
    result = classify(200, b'{"success":true,"ReferenceId":42,"code":1234}')
    assert (result.outcome, result.reference_id, result.code) == ("success", "42", "1234")


def test_classify_truncates_long_messages_and_keeps_retry_after() -> None:
    body = msgspec.json.encode({"success": False, "message": "x" * 2000})
    result = classify(503, body, retry_after_seconds=30.0)
    assert len(result.message) == MESSAGE_LIMIT
    assert result.retry_after_seconds == 30.0


def test_classify_describes_a_transport_error() -> None:
    result = classify(None, None, error="timeout after 2 s")
    assert (result.outcome, result.message) == ("temporary", "timeout after 2 s")


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("30", 30.0),
        (" 0 ", 0.0),
        ("Sun, 22 Nov 2026 10:02:00 GMT", 120.0),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


# -- the client over HTTP ---------------------------------------------------------------------


async def test_grant_posts_json_with_bearer_and_returns_the_grant(
    client: InletClient, mocked: aioresponses
) -> None:
    mocked.post(GRANT_URL, status=200, body=OK)
    result = await client.grant_access("key-oslo", REQUEST)
    assert result.outcome == "success"
    assert result.reference_id == "ref-1"
    assert result.code_formatted == "#1234*"
    [call] = mocked.requests[("POST", URL(GRANT_URL))]
    assert call.kwargs["headers"]["Authorization"] == "Bearer key-oslo"
    assert call.kwargs["allow_redirects"] is False
    assert msgspec.json.decode(call.kwargs["data"])["externalId"] == REQUEST.external_id


async def test_update_and_revoke_use_their_paths(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/UpdateAccess", status=200, body=b'{"success":true,"code":"9999"}')
    mocked.post(f"{BASE}/RevokeAccess", status=200, body=b'{"success":true}')
    update = await client.update_access("k", update_from_grant("ref-1", REQUEST))
    revoke = await client.revoke_access("k", "ref-1")
    assert (update.outcome, update.code) == ("success", "9999")
    assert revoke.outcome == "success"
    [call] = mocked.requests[("POST", URL(f"{BASE}/RevokeAccess"))]
    assert msgspec.json.decode(call.kwargs["data"]) == {"ReferenceId": "ref-1"}


async def test_configured_paths_are_used(mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/v2/grant", status=200, body=OK)
    async with aiohttp.ClientSession() as session:
        client = InletClient(
            session, base_url=BASE, timeout_seconds=1, paths=InletPaths(grant="/v2/grant")
        )
        assert (await client.grant_access("k", REQUEST)).outcome == "success"


async def test_timeout_is_temporary(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(GRANT_URL, exception=TimeoutError())
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.http_status) == ("temporary", None)
    assert "timeout" in result.message


async def test_connection_error_is_temporary(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(GRANT_URL, exception=aiohttp.ClientConnectionError("connection refused"))
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.http_status) == ("temporary", None)
    assert "connection refused" in result.message


async def test_server_error_is_temporary(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(GRANT_URL, status=500, body=b'{"success":false,"message":"Internal error"}')
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.http_status, result.message) == (
        "temporary",
        500,
        "Internal error",
    )


async def test_429_carries_retry_after(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(
        GRANT_URL,
        status=429,
        body=b'{"success":false,"message":"Too many requests"}',
        headers={"Retry-After": "120"},
    )
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.retry_after_seconds) == ("temporary", 120.0)


@pytest.mark.parametrize(
    ("retryable", "outcome"), [(True, "temporary"), (False, "permanent"), (None, "permanent")]
)
async def test_200_with_success_false(
    client: InletClient, mocked: aioresponses, retryable: bool | None, outcome: str
) -> None:
    body: dict[str, object] = {"success": False, "message": "Lock offline"}
    if retryable is not None:
        body["retryable"] = retryable
    mocked.post(GRANT_URL, status=200, body=msgspec.json.encode(body))
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.http_status, result.message) == (outcome, 200, "Lock offline")


async def test_400_keeps_inlets_message(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(GRANT_URL, status=400, body=b'{"success":false,"message":"partner is required"}')
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.message) == ("permanent", "partner is required")


async def test_unreadable_200_is_temporary(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(GRANT_URL, status=200, body=b"<html>maintenance</html>")
    result = await client.grant_access("k", REQUEST)
    assert (result.outcome, result.message) == ("temporary", "unreadable response")


async def test_revoke_404_is_success(client: InletClient, mocked: aioresponses) -> None:
    mocked.post(
        f"{BASE}/RevokeAccess",
        status=404,
        body=b'{"success":false,"message":"Unknown ReferenceId"}',
    )
    result = await client.revoke_access("k", "ref-gone")
    assert (result.outcome, result.http_status) == ("success", 404)
    assert "already gone" in result.message


async def test_logs_keys_and_outcome_but_no_personal_data(
    client: InletClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(GRANT_URL, status=200, body=OK)
    mocked.post(
        GRANT_URL,
        status=400,
        body=b'{"success":false,"message":"Invalid email ola@example.no'
        b' for Ola Nordmann, +4791234567"}',
    )
    with caplog.at_level(logging.INFO, logger="inlet_bridge.inlet.client"):
        await client.grant_access("secret-key", REQUEST)
        failed = await client.grant_access("secret-key", REQUEST)
    assert "ola@example.no" in failed.message  # operators still see Inlet's full message
    records = [r for r in caplog.records if getattr(r, "action", None) == "inlet.call"]
    assert len(records) == 2
    assert [r.__dict__["outcome"] for r in records] == ["success", "permanent"]
    assert all(r.__dict__["grant_key"] == REQUEST.external_id for r in records)
    assert [r.__dict__["http_status"] for r in records] == [200, 400]
    assert "Invalid email" in records[1].__dict__["inlet_message"]
    fields = ("operation", "grant_key", "reference_id", "http_status", "outcome", "inlet_message")
    logged = " ".join(r.getMessage() + str([r.__dict__[f] for f in fields]) for r in records)
    for secret in ("Ola", "ola@example.no", "91234567", "1234", "https://l/a", "secret-key"):
        assert secret not in logged


def test_update_request_is_not_a_grant_request() -> None:
    # The client tells the two apart by type; an update must never be sent as a grant.
    assert not isinstance(update_from_grant("r", REQUEST), GrantRequest)
    assert isinstance(update_from_grant("r", REQUEST), UpdateRequest)
