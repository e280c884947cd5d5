"""How do codes get back into Spectra? The write-back sink.

A new or changed code is posted as the reservation's code; a replaced or revoked code is
disabled. The reservation is the stay (`stay_id` is Spectra's reservationGuid).
"""

from __future__ import annotations

import aiohttp

from service.adapters.spectra.client import SpectraClient, SpectraError
from service.properties import HotelsConfig
from service.sinks import SinkResult
from service.store.deliveries import ClaimedDelivery


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
        try:
            if change.type in ("access.granted", "access.updated"):
                if data.code_formatted and data.code_formatted != data.previous_code_formatted:
                    await client.post_reservation_code(data.stay_id, data.code_formatted)
                if (
                    data.previous_code_formatted
                    and data.previous_code_formatted != data.code_formatted
                ):
                    await client.disable_reservation_code(
                        data.stay_id, data.previous_code_formatted
                    )
            elif change.type == "access.revoked" and data.previous_code_formatted:
                await client.disable_reservation_code(data.stay_id, data.previous_code_formatted)
        except SpectraError as exc:
            return SinkResult(ok=False, status=exc.status, message=exc.message)
        return SinkResult(ok=True, status=200, message="written back")
