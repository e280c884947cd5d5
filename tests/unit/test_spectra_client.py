"""The Spectra client turns every kind of failure into a SpectraError, without leaking data."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from inlet_bridge.adapters.spectra.client import SpectraClient, SpectraError, sync_time_text

BASE = "https://demo-spectraapi.spectra-systems.eu"
GUID = "6f1c2a4e-1111-4a2b-9c3d-000000000001"


@pytest.fixture
async def client() -> AsyncIterator[SpectraClient]:
    async with aiohttp.ClientSession() as session:
        yield SpectraClient(
            session,
            base_url=BASE + "/",
            username="inlet",
            password="s3cret-pass",
            hotel_code="OSL",
            timeout_seconds=5,
        )


class _Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required `stream_writer` argument
    (pnuckowski/aioresponses#289); a finished request only needs its output size."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class _Mocked(aioresponses):
    def add(self, url: Any, method: str = "GET", *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _Response)
        super().add(url, method, *args, **kwargs)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with _Mocked() as m:
        yield m


def sent(mocked: aioresponses) -> list[tuple[str, URL]]:
    return [(method, url) for method, url in mocked.requests]


async def test_basic_auth_is_sent_and_rooms_decode(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/api/v1/rooms", payload=[{"RoomNumber": 101, "Status": "Clean"}])
    rooms = await client.rooms()
    assert [(r.room_number, r.status) for r in rooms] == [(101, "Clean")]
    ((_, calls),) = mocked.requests.items()
    authorization = calls[0].kwargs["headers"]["Authorization"]
    assert authorization == "Basic " + base64.b64encode(b"inlet:s3cret-pass").decode()


async def test_the_password_is_not_in_the_repr(client: SpectraClient) -> None:
    assert "s3cret" not in repr(client)


@pytest.mark.parametrize(
    ("status", "temporary"), [(400, False), (401, False), (404, False), (429, True), (500, True)]
)
async def test_an_error_status_is_an_http_error(
    client: SpectraClient, mocked: aioresponses, status: int, temporary: bool
) -> None:
    mocked.get(
        f"{BASE}/api/v5/reservations/{GUID}",
        status=status,
        body='{"message": "guest Ola Nordmann not allowed"}',
    )
    with pytest.raises(SpectraError) as caught:
        await client.reservation(GUID)
    error = caught.value
    assert (error.kind, error.status, error.temporary) == ("http", status, temporary)
    assert error.message == f"reservation: HTTP {status}"
    assert "Ola" not in str(error)


async def test_a_timeout_is_a_timeout_error(client: SpectraClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/api/v1/rooms", exception=TimeoutError())
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert (caught.value.kind, caught.value.status, caught.value.temporary) == (
        "timeout",
        None,
        True,
    )


async def test_a_server_timeout_is_a_timeout_error(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/api/v1/rooms", exception=aiohttp.ServerTimeoutError())
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert caught.value.kind == "timeout"


async def test_a_refused_connection_is_a_connection_error(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/api/v1/rooms", exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert (caught.value.kind, caught.value.temporary) == ("connection", True)


async def test_bad_json_is_a_decode_error(client: SpectraClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/api/v5/reservations/{GUID}", status=200, body="{not json")
    with pytest.raises(SpectraError) as caught:
        await client.reservation(GUID)
    assert (caught.value.kind, caught.value.status) == ("decode", 200)
    assert caught.value.temporary is False


async def test_a_wrong_shape_is_a_decode_error(client: SpectraClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/api/v5/reservations/{GUID}", payload={"reservationNumber": "R-1"})
    with pytest.raises(SpectraError) as caught:
        await client.reservation(GUID)
    assert caught.value.kind == "decode"
    assert "reservationGuid" in caught.value.message
    assert "R-1" not in caught.value.message


async def test_a_list_that_is_not_a_list_is_a_decode_error(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/api/v1/rooms", payload="rooms")
    with pytest.raises(SpectraError) as caught:
        await client.rooms()
    assert caught.value.kind == "decode"


async def test_a_bad_item_in_a_list_is_skipped_and_logged_without_data(
    client: SpectraClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(
        re.compile(r".*/api/v5/reservations\?.*"),
        payload=[
            {"reservationGuid": "g1", "reservationNumber": "R-1"},
            {"reservationNumber": "R-2", "guests": [{"firstName": "Kari"}]},
        ],
    )
    with caplog.at_level(logging.WARNING):
        found = await client.reservations(date(2026, 11, 23), date(2026, 11, 24))
    assert [r.reservation_guid for r in found] == ["g1"]
    (record,) = caplog.records
    assert record.action == "spectra.call"  # type: ignore[attr-defined]
    assert record.skipped == 1  # type: ignore[attr-defined]
    assert "Kari" not in record.getMessage()
    assert "R-2" not in record.getMessage()


async def test_reservations_send_the_assumed_query_parameters(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(re.compile(r".*/api/v5/reservations\?.*"), payload=[])
    await client.reservations(date(2026, 11, 23), date(2026, 11, 30), page=2, page_size=50)
    ((method, url),) = sent(mocked)
    assert method == "GET"
    assert url.path == "/api/v5/reservations"
    assert dict(url.query) == {
        "arrivalFrom": "2026-11-23",
        "arrivalTo": "2026-11-30",
        "page": "2",
        "pageSize": "50",
    }


async def test_all_reservations_pages_until_a_short_page(
    client: SpectraClient, mocked: aioresponses
) -> None:
    pattern = re.compile(r".*/api/v5/reservations\?.*")
    mocked.get(pattern, payload=[{"reservationGuid": "a"}, {"reservationGuid": "b"}])
    mocked.get(pattern, payload=[{"reservationGuid": "c"}])
    found = await client.all_reservations(date(2026, 11, 23), date(2026, 11, 30), page_size=2)
    assert [r.reservation_guid for r in found] == ["a", "b", "c"]
    assert [url.query["page"] for _, url in sent(mocked)] == ["1", "2"]


def test_sync_time_is_utc_iso_floored_to_the_second() -> None:
    oslo = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 22, 11, 0, 5, 999_000, tzinfo=oslo)
    assert sync_time_text(moment) == "2026-11-22T10:00:05Z"
    with pytest.raises(ValueError, match="aware"):
        sync_time_text(datetime(2026, 11, 22, 10, 0))


async def test_events_since_puts_the_encoded_sync_time_in_the_path(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(
        re.compile(r".*/api/events/v1/events/.*/reservations$"),
        payload=[{"reservationGuid": "g1", "eventTime": "2026-11-22T10:00:01Z"}],
    )
    items = await client.events_since(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    assert [i.reservation_guid for i in items] == ["g1"]
    ((_, url),) = sent(mocked)
    assert url.raw_path == "/api/events/v1/events/2026-11-22T10%3A00%3A00Z/reservations"


async def test_posting_a_code_sends_the_keypad_form(
    client: SpectraClient, mocked: aioresponses
) -> None:
    captured: list[bytes] = []

    def remember(url: URL, **kwargs: object) -> CallbackResult:
        data = kwargs["data"]
        assert isinstance(data, bytes)
        captured.append(data)
        return CallbackResult(status=204, response_class=_Response)

    mocked.post(f"{BASE}/api/v1/reservations/{GUID}/reservationCode", callback=remember)
    await client.post_reservation_code(GUID, "#1234*")
    assert captured == [b'{"code":"#1234*"}']


async def test_disabling_a_code_escapes_it_and_never_logs_it(
    client: SpectraClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.patch(re.compile(r".*/reservationCode/.*/disable$"), status=404, body="no such code")
    with caplog.at_level(logging.DEBUG), pytest.raises(SpectraError) as caught:
        await client.disable_reservation_code(GUID, "#1234*")
    assert (caught.value.kind, caught.value.status) == ("http", 404)
    ((method, url),) = sent(mocked)
    assert method == "PATCH"
    assert url.raw_path.endswith("/reservationCode/%231234%2A/disable")
    assert not url.fragment
    text = " ".join(r.getMessage() for r in caplog.records) + str(caught.value)
    assert "1234" not in text
    assert all(r.action == "spectra.call" for r in caplog.records)  # type: ignore[attr-defined]


async def test_a_write_with_a_non_json_answer_still_succeeds(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.patch(re.compile(r".*/disable$"), status=200, body="OK")
    await client.disable_reservation_code(GUID, "#1234*")


async def test_conferences_use_the_hotel_code_and_balance_decodes(
    client: SpectraClient, mocked: aioresponses
) -> None:
    mocked.get(
        f"{BASE}/api/v2/reservations/OSL/conferences",
        payload={"items": [{"conferenceGuid": "c1", "roomName": "Fjord"}]},
    )
    mocked.get(
        f"{BASE}/api/guestjourney/v5/balance/{GUID}", payload={"balance": 123.45, "currency": "NOK"}
    )
    (conference,) = await client.conferences()
    assert (conference.conference_guid, conference.room_name) == ("c1", "Fjord")
    balance = await client.balance(GUID)
    assert (str(balance.balance), balance.currency) == ("123.45", "NOK")
