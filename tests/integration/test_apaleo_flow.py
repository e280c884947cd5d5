"""The apaleo adapter end to end: the emulated account notifies the service's receiver, the
worker fetches each reservation (OAuth2, token cached), the service grants at the Inlet
sandbox, and the code is written back to the reservation's comment."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.certify.stage import Stage
from inlet_bridge.keys import HOTELS

from .apaleo_support import (
    ARRIVAL,
    CONNECTION,
    HOOK_PASSWORD,
    HOOK_USER,
    RESERVATION,
    ApaleoAccount,
    apaleo_account,
)

ROOM_101 = ["L-101", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
ROOM_102 = ["L-102", "MAIN-ENTRANCE", "NIGHT-ENTRANCE"]
DURING = ARRIVAL + timedelta(hours=2)


@pytest.fixture
async def account(database_url: str, tmp_path: Path) -> AsyncIterator[ApaleoAccount]:
    async with apaleo_account(database_url, tmp_path) as running:
        yield running


async def created(account: ApaleoAccount, **overrides: object) -> dict[str, object]:
    await account.put(**overrides)
    answer = await account.notify("created")
    assert answer["status"] == 200
    assert await account.work() == 1
    grant = await account.inlet_grant()
    assert grant["state"] == "active"
    return grant


# --- the lifecycle ---


async def test_a_booking_created_in_apaleo_gets_access_and_its_code_is_written_back(
    account: ApaleoAccount,
) -> None:
    await account.put(comment="VIP: late arrival")
    answer = await account.notify("created")
    assert answer["status"] == 200  # stored before it was answered
    (stored,) = await account.notifications()
    assert (stored["state"], stored["entity_id"]) == ("pending", RESERVATION)
    assert await account.inlet_calls("GrantAccess") == []  # nothing fetched yet

    assert await account.work() == 1
    (grant_call,) = await account.inlet_calls("GrantAccess")
    body = grant_call["body"]
    assert body["locks"] == ROOM_101
    assert (body["bookingId"], body["guestName"]) == (RESERVATION, "Ola Nordmann")
    assert body["start"] == ARRIVAL.isoformat()
    grant = await account.inlet_grant()
    assert await account.h.opens(grant["code"], "L-101", DURING)
    (event,) = await account.events()
    assert event["event_id"].startswith(f"apaleo.{RESERVATION}.")
    (handled,) = await account.notifications()
    assert (handled["state"], handled["event_id"]) == ("done", event["event_id"])
    # The hotel's comment is kept; the keypad code is added on a line of its own.
    assert (
        await account.comment() == f"VIP: late arrival\nInlet access code: {grant['codeFormatted']}"
    )
    assert account.worker.clients.get(CONNECTION).tokens_fetched == 1  # type: ignore[union-attr]


async def test_a_change_of_guest_details_updates_the_access(account: ApaleoAccount) -> None:
    await created(account)
    account.h.clock.advance(timedelta(minutes=1))
    await account.put(
        primaryGuest={"firstName": "Kari", "lastName": "Nordmann", "email": "kari@example.no"}
    )
    await account.notify("changed")
    assert await account.work() == 1
    (update,) = await account.inlet_calls("UpdateAccess")
    assert (update["body"]["guestName"], update["body"]["email"]) == (
        "Kari Nordmann",
        "kari@example.no",
    )
    assert len(await account.events()) == 2


async def test_access_waits_for_a_room_and_follows_it_when_assigned(
    account: ApaleoAccount,
) -> None:
    await account.put(unit=None)
    await account.notify("created")
    assert await account.work() == 1
    assert await account.inlet_calls("GrantAccess") == []  # no unit, no access yet
    account.h.clock.advance(timedelta(minutes=1))
    await account.put(unit={"id": "OSL-102", "name": "102"})
    await account.notify("unit-assigned")
    assert await account.work() == 1
    (grant_call,) = await account.inlet_calls("GrantAccess")
    assert grant_call["body"]["locks"] == ROOM_102


async def test_a_room_move_moves_the_access(account: ApaleoAccount) -> None:
    grant = await created(account)
    account.h.clock.advance(timedelta(minutes=1))
    await account.put(unit={"id": "OSL-102", "name": "102"})
    await account.notify("unit-assigned")
    assert await account.work() == 1
    (update,) = await account.inlet_calls("UpdateAccess")
    assert update["body"]["locks"] == ROOM_102
    code = (await account.inlet_grant())["code"]
    assert await account.h.opens(code, "L-102", DURING)
    assert not await account.h.opens(grant["code"], "L-101", DURING)


async def test_a_cancellation_revokes_and_removes_the_code_from_the_comment(
    account: ApaleoAccount,
) -> None:
    grant = await created(account, comment="Allergic to feathers")
    account.h.clock.advance(timedelta(minutes=1))
    await account.put(status="Canceled")
    await account.notify("canceled")
    assert await account.work() == 1
    (revoke,) = await account.inlet_calls("RevokeAccess")
    assert revoke["body"]["ReferenceId"] == grant["ReferenceId"]
    assert not await account.h.opens(grant["code"], "L-101", DURING)
    assert await account.comment() == "Allergic to feathers"


async def test_a_check_out_revokes(account: ApaleoAccount) -> None:
    await created(account)
    account.h.clock.set(ARRIVAL + timedelta(minutes=10))
    await account.put(status="InHouse")
    await account.notify("checked-in")
    assert await account.work() == 1
    assert await account.inlet_calls("RevokeAccess") == []
    account.h.clock.set(ARRIVAL + timedelta(days=1))
    await account.put(status="CheckedOut")
    await account.notify("checked-out")
    assert await account.work() == 1
    assert len(await account.inlet_calls("RevokeAccess")) == 1
    assert (await account.inlet_grant())["state"] == "revoked"


# --- duplicates and order ---


async def test_a_repeated_notification_is_stored_once_and_changes_nothing(
    account: ApaleoAccount,
) -> None:
    await account.put()
    first = await account.notify("created")
    again = await account.notify("created", notification_id=first["notification"]["id"])
    assert (first["status"], again["status"]) == (200, 200)
    assert len(await account.notifications()) == 1
    assert await account.work() == 1
    # Another notification for the unchanged reservation: fetched, nothing new appended.
    await account.notify("changed")
    assert await account.work() == 1
    assert len(await account.events()) == 1
    assert len(await account.inlet_calls("GrantAccess")) == 1
    assert [n["state"] for n in await account.notifications()] == ["done", "done"]


async def test_notifications_handled_out_of_order_converge_on_the_current_state(
    account: ApaleoAccount,
) -> None:
    # Created and cancelled before the worker looked; apaleo's deliveries came in reverse.
    await account.put()
    created_state = account.state.reservations[RESERVATION].copy()
    account.h.clock.advance(timedelta(seconds=30))
    await account.put(status="Canceled")
    await account.notify("canceled")
    await account.notify("created")
    assert await account.work() == 2
    assert await account.inlet_calls("GrantAccess") == []
    assert {n["state"] for n in await account.notifications()} == {"done"}
    # A fetch of the older state that finishes last (another replica, a slow answer) is
    # stored, but folds before the newer one: apaleo's `modified` orders them.
    older = mapping.decode(msgspec.json.encode(created_state), mapping.ApaleoReservation)
    connection = account.h.app[HOTELS].apaleo[CONNECTION]
    outcome, event_id = await account.worker.append_reservation(CONNECTION, connection, older)
    assert (outcome, event_id is not None) == ("done", True)
    await account.h.settle()
    assert await account.inlet_calls("GrantAccess") == []
    timeline = await Stage.timeline(account.h, f"apaleo-{CONNECTION}", RESERVATION)
    assert timeline["desired"]["grants"] == []


# --- failures ---


async def test_a_fetch_failing_for_a_while_is_retried_with_backoff_until_it_succeeds(
    account: ApaleoAccount,
) -> None:
    await account.put()
    await account.fault(
        kind="status", status=503, count=None, paths=[f"/booking/v1/reservations/{RESERVATION}"]
    )
    await account.notify("created")
    assert await account.work() == 1
    (row,) = await account.notifications()
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "503" in row["last_error"]
    assert await account.work() == 0  # not due yet: backing off
    account.h.clock.advance(timedelta(seconds=10))
    assert await account.work() == 1
    assert (await account.notifications())[0]["attempts"] == 2
    account.h.clock.advance(timedelta(seconds=10))
    assert await account.work() == 0  # the second wait is 20 s
    await account.clear_faults()
    account.h.clock.advance(timedelta(seconds=10))
    assert await account.work() == 1
    (row,) = await account.notifications()
    assert (row["state"], row["attempts"]) == ("done", 3)
    assert (await account.inlet_grant())["state"] == "active"


async def test_a_404_is_recorded_and_never_taken_as_a_cancellation(
    account: ApaleoAccount,
) -> None:
    grant = await created(account)
    await account.control("DELETE", f"/_emulator/reservations/{RESERVATION}")
    await account.notify("deleted")
    assert await account.work() == 1
    assert [n["state"] for n in await account.notifications()] == ["done", "not_found"]
    assert await account.inlet_calls("RevokeAccess") == []
    assert await account.h.opens(grant["code"], "L-101", DURING)
    assert len(await account.events()) == 1
    # A reservation apaleo never had: recorded the same way, nothing appended.
    await account.notify("created", reservation_id="NOSUCH-1")
    assert await account.work() == 1
    assert (await account.notifications())[-1]["state"] == "not_found"
    assert await account.events("NOSUCH-1") == []


@pytest.mark.parametrize(
    ("connection", "username", "password"),
    [
        (CONNECTION, HOOK_USER, "wrong-password"),
        (CONNECTION, "someone", HOOK_PASSWORD),
        ("elsewhere", HOOK_USER, HOOK_PASSWORD),
    ],
)
async def test_a_notification_with_bad_credentials_is_refused_and_nothing_is_stored(
    account: ApaleoAccount, connection: str, username: str, password: str
) -> None:
    await account.put()
    url = account.receiver.replace(f"/{CONNECTION}/", f"/{connection}/")
    login = base64.b64encode(f"{username}:{password}".encode()).decode()
    body = account.state.notification("created", RESERVATION)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers={"Authorization": f"Basic {login}"}) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Basic")
        async with http.post(url, json=body) as r:
            assert r.status == 401
    answer = await account.notify("created", password="not-the-password")
    assert answer["status"] == 401
    assert await account.notifications() == []
    assert await account.work() == 0


async def test_health_checks_and_other_topics_are_acknowledged_and_not_stored(
    account: ApaleoAccount,
) -> None:
    login = base64.b64encode(f"{HOOK_USER}:{HOOK_PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {login}"}
    health = {
        "id": "h-1",
        "topic": "system",
        "type": "healthcheck",
        "accountId": "DEMO",
        "propertyIds": ["OSL"],
        "timestamp": 1655824163606,
    }
    folio = {
        "id": "f-1",
        "topic": "Folio",
        "type": "created",
        "propertyId": "OSL",
        "timestamp": 1655824163606,
        "data": {"entityId": "F-1"},
    }
    foreign = account.state.notification("created", RESERVATION) | {"propertyId": "MUC"}
    async with aiohttp.ClientSession() as http:
        for body, status in ((health, 200), (folio, 200), (foreign, 422), ([1, 2], 400)):
            async with http.post(account.receiver, json=body, headers=headers) as r:
                assert r.status == status, await r.text()
    assert await account.notifications() == []


# --- OAuth and the reconciliation read ---


async def test_the_token_is_cached_and_renewed_when_it_expires_or_is_refused(
    account: ApaleoAccount,
) -> None:
    await created(account)
    client = account.worker.clients.get(CONNECTION)
    assert client is not None
    for kind in ("changed", "changed"):
        await account.notify(kind)
        await account.work()
    assert (client.tokens_fetched, account.state.token_requests) == (1, 1)
    account.h.clock.advance(timedelta(minutes=59, seconds=30))  # within the renewal margin
    await account.notify("changed")
    await account.work()
    assert (client.tokens_fetched, account.state.token_requests) == (2, 2)
    await account.control("POST", "/_emulator/revoke-tokens")  # rotated on apaleo's side
    await account.notify("changed")
    await account.work()
    assert client.tokens_fetched == 3
    assert {n["state"] for n in await account.notifications()} == {"done"}


async def test_the_reconciliation_read_catches_a_notification_apaleo_never_sent(
    account: ApaleoAccount,
) -> None:
    await account.put()  # no notification
    await account.put("XPGMSXGF-2", unit={"id": "OSL-102", "name": "102"})
    await account.put(
        "LATER-1",
        arrival=(ARRIVAL + timedelta(days=10)).isoformat(),
        departure=(ARRIVAL + timedelta(days=12)).isoformat(),
    )
    report = await account.worker.reconcile_once(CONNECTION)
    assert (report.listed, report.appended) == (2, 2)  # the one in ten days is not in the window
    await account.h.settle()
    assert (await account.inlet_grant())["state"] == "active"
    assert (await account.inlet_grant("XPGMSXGF-2"))["state"] == "active"
    again = await account.worker.reconcile_once(CONNECTION)
    assert (again.appended, again.unchanged) == (0, 2)
    assert not await account.worker.reconcile_due(CONNECTION)
    account.h.clock.advance(timedelta(minutes=15))
    assert await account.worker.reconcile_due(CONNECTION)


async def test_the_code_written_back_follows_a_new_code(account: ApaleoAccount) -> None:
    grant = await created(account)
    assert await account.comment() == f"Inlet access code: {grant['codeFormatted']}"
    response = await account.h.service.post(
        "/v1/resync",
        json={"selector": {"bookings": [f"apaleo-{CONNECTION}:{RESERVATION}"]}, "dry_run": False},
        headers=account.h.admin_headers,
    )
    assert response.status == 202, await response.text()
    await account.h.settle()
    code = (await account.inlet_grant())["codeFormatted"]
    assert code != grant["codeFormatted"]
    assert await account.comment() == f"Inlet access code: {code}"


async def test_a_refused_client_is_retried_and_counted_as_an_auth_error(
    account: ApaleoAccount,
) -> None:
    await account.put()
    account.state.client_secret = "rotated-on-apaleos-side"  # our secret no longer works
    await account.notify("created")
    assert await account.work() == 1
    (row,) = await account.notifications()
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "token refused: HTTP 400" in row["last_error"]
    errors = account.h.metrics.registry.get_sample_value(
        "inlet_bridge_poller_errors_total", {"connection": f"apaleo-{CONNECTION}", "kind": "auth"}
    )
    assert errors == 1.0
    account.state.client_secret = "apaleo-client-secret"  # the operator fixed it
    account.h.clock.advance(timedelta(seconds=10))
    assert await account.work() == 1
    assert (await account.notifications())[0]["state"] == "done"
