"""How do codes get back into Spectra? The write-back sink.

A new or changed code is posted as the reservation's code; a replaced or revoked code is
disabled. The reservation is the stay (`stay_id` is Spectra's reservationGuid). A conference
is no reservation (mapping gives it the conference GUID as both booking and stay), so
nothing is written for it. A code Spectra no longer knows (the reservation was deleted, or
the code never reached it) needs no disabling.
"""

from __future__ import annotations

import aiohttp

from inlet_bridge.adapters.spectra.client import SpectraClient, SpectraError
from inlet_bridge.domain.changes import AccessChangeData
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.sinks import SinkResult
from inlet_bridge.store.deliveries import ClaimedDelivery


class SpectraSink:
    def __init__(self, session: aiohttp.ClientSession, hotels: HotelsConfig) -> None:
        self._session = session
        self._hotels = hotels

    def _client(self, connection_name: str) -> SpectraClient | None:
        connection = self._hotels.spectra.get(connection_name)
        if connection is None:
            return None
        return SpectraClient(
            self._session,
            base_url=connection.base_url,
            username=connection.username.reveal(),
            password=connection.password.reveal(),
            hotel_code=connection.hotel_code,
            timeout_seconds=connection.timeout_seconds,
        )

    async def deliver(self, delivery: ClaimedDelivery) -> SinkResult:
        client = self._client(delivery.sink.partition(":")[2])
        if client is None:
            return SinkResult(ok=False, status=None, message="Spectra connection not configured")
        change = delivery.change
        data = change.data
        if _is_conference(data):
            return SinkResult(ok=True, status=None, message="conference: nothing to write back")
        replaced = data.previous_code_formatted
        try:
            if change.type in ("access.granted", "access.updated"):
                # An update names the code it replaced; without one the code is the one
                # already written (a room or date change), and posting it again would add it
                # to the reservation a second time.
                new_code = data.code_is_new
                if data.code_formatted and data.code_formatted != replaced and new_code:
                    await client.post_reservation_code(data.stay_id, data.code_formatted)
                if replaced and replaced != data.code_formatted:
                    await _disable(client, data.stay_id, replaced)
            elif change.type == "access.revoked" and replaced:
                await _disable(client, data.stay_id, replaced)
        except SpectraError as exc:
            return SinkResult(ok=False, status=exc.status, message=exc.message)
        return SinkResult(ok=True, status=200, message="written back")


def _is_conference(data: AccessChangeData) -> bool:
    """Whether the stay is a conference (see `mapping.conference_to_event`)."""
    return data.booking_id == data.stay_id


async def _disable(client: SpectraClient, guid: str, code: str) -> None:
    """Disable a code; a 404 (no such reservation or code any more) leaves nothing to do."""
    try:
        await client.disable_reservation_code(guid, code)
    except SpectraError as exc:
        if exc.status != 404:
            raise
