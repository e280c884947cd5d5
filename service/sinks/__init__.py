"""Where "access changed" records go: a PMS's webhook receiver, the Spectra write-back."""

from __future__ import annotations

from typing import Protocol

import msgspec

from service.store.deliveries import ClaimedDelivery


class SinkResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    status: int | None
    message: str


class Sink(Protocol):
    async def deliver(self, delivery: ClaimedDelivery) -> SinkResult: ...
