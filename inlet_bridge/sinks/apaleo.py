"""How do codes get back into apaleo? The write-back sink.

apaleo has no field for a door code; the keypad code goes into the reservation's `comment`
(what the front desk reads), as one line `Inlet access code: #1234*` that replaces the one we
wrote before and is removed when access is revoked. Every other line of the comment is the
hotel's and is kept. Written with `PATCH /booking/v1/reservations/{id}` (a JSON Patch of
`/comment`, one of the operations apaleo's Swagger allows); the comment is read first, so a
repeat changes nothing. The field is our choice (docs/contract.md section 4: assumed); a
reservation apaleo no longer has (404) leaves nothing to write.
"""

from __future__ import annotations

from inlet_bridge.adapters.apaleo import mapping
from inlet_bridge.adapters.apaleo.client import ApaleoError
from inlet_bridge.adapters.apaleo.worker import ApaleoClients
from inlet_bridge.sinks import SinkResult
from inlet_bridge.store.deliveries import ClaimedDelivery


class ApaleoSink:
    def __init__(self, clients: ApaleoClients) -> None:
        self._clients = clients

    async def deliver(self, delivery: ClaimedDelivery) -> SinkResult:
        client = self._clients.get(delivery.sink.partition(":")[2])
        if client is None:
            return SinkResult(ok=False, status=None, message="apaleo connection not configured")
        change = delivery.change
        data = change.data
        if change.type in ("access.granted", "access.updated"):
            code = data.code_formatted or data.code
        elif change.type == "access.revoked":
            code = None
        else:
            # A failed call changes nothing a guest can use: the comment keeps what it said.
            return SinkResult(ok=True, status=None, message=f"{change.type}: nothing to write")
        try:
            reservation = await client.reservation(data.stay_id)
            wanted = mapping.comment_with_code(reservation.comment, code)
            operations = mapping.comment_patch(reservation.comment, wanted)
            if operations:
                await client.patch_reservation(data.stay_id, operations)
        except ApaleoError as exc:
            if exc.not_found:
                return SinkResult(ok=True, status=404, message="reservation gone: nothing to write")
            return SinkResult(ok=False, status=exc.status, message=exc.message)
        return SinkResult(
            ok=True, status=204, message="written back" if operations else "already written"
        )
