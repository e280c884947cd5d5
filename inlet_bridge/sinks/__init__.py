"""Where do "access changed" records go? The sinks: a PMS's webhook receiver (`webhook`), the
Spectra write-back (`spectra`) and the apaleo write-back (`apaleo`)."""

from __future__ import annotations

from typing import Protocol

import msgspec

from inlet_bridge.store.deliveries import ClaimedDelivery


class SinkResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    status: int | None
    message: str


class Sink(Protocol):
    async def deliver(self, delivery: ClaimedDelivery) -> SinkResult: ...
