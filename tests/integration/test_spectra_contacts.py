"""A Spectra reservation with an invalid email or phone is appended without it (never sent to
Inlet) instead of being left out: the guest gets access, and a cancellation still revokes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from .spectra_support import CONNECTION, SpectraHotel, spectra_hotel

GUID = "6f1c2a4e-3333-4a2b-9c3d-000000000003"
MINUTE = timedelta(minutes=1)
BAD_MOBILE = "98765432"  # no country code
GUEST = {"firstName": "Ola", "lastName": "Nordmann", "email": "ola@example.no"}


@pytest.fixture
async def hotel(database_url: str, tmp_path: Path) -> AsyncIterator[SpectraHotel]:
    async with spectra_hotel(database_url, tmp_path) as running:
        yield running


async def test_a_reservation_with_a_bad_mobile_gets_access_without_it(
    hotel: SpectraHotel, caplog: pytest.LogCaptureFixture
) -> None:
    await hotel.poll()  # the first start: a backfill of an empty hotel
    hotel.h.clock.advance(MINUTE)
    await hotel.put_reservation(GUID, guests=[{**GUEST, "mobile": BAD_MOBILE}])

    with caplog.at_level(logging.INFO):
        report = await hotel.poll()

    assert report.appended == 1
    (grant,) = await hotel.inlet_calls("GrantAccess")
    assert grant["body"]["email"] == "ola@example.no"
    assert "phoneNumber" not in grant["body"]
    assert (await hotel.inlet_grant("R-1001", GUID))["state"] == "active"
    (stored,) = await hotel.events(GUID)
    assert json.loads(stored["body"])["booking"]["stays"][0]["guests"][0]["phone"] is None
    (warnings,) = await hotel.h.rows("SELECT warnings::text AS w FROM events")
    assert [w["path"] for w in json.loads(warnings["w"])] == ["booking.stays[0].guests[0].phone"]
    (dropped,) = [r for r in caplog.records if getattr(r, "action", "") == "ingest.contact_dropped"]
    assert dropped.connection == CONNECTION  # type: ignore[attr-defined]
    assert dropped.paths == ["booking.stays[0].guests[0].phone"]  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if getattr(r, "action", "") == "spectra.invalid"]
    assert all(BAD_MOBILE not in str(vars(r)) for r in caplog.records)

    # Read again unchanged: not appended again.
    hotel.h.clock.advance(MINUTE)
    assert (await hotel.poll()).appended == 0

    # The cancellation carries the same bad mobile, and revokes.
    hotel.h.clock.advance(MINUTE)
    await hotel.set_status(GUID, "Cancelled")
    assert (await hotel.poll()).appended == 1
    assert len(await hotel.inlet_calls("RevokeAccess")) == 1
    assert (await hotel.inlet_grant("R-1001", GUID))["state"] == "revoked"
