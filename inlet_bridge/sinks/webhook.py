"""How does a PMS hear about access? Signed outbound webhooks (Standard Webhooks).

`webhook-id` is `msg_` and the delivery's UUIDv7: the same on every attempt, so a receiver
can drop repeats, and unique across deployments and restores, so it never drops a new message.
Any non-2xx answer or a timeout is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import msgspec

from inlet_bridge import signing
from inlet_bridge.clock import Clock
from inlet_bridge.domain.config import HotelsConfig
from inlet_bridge.sinks import SinkResult
from inlet_bridge.store.deliveries import ClaimedDelivery

log = logging.getLogger(__name__)


def webhook_message_id(delivery: ClaimedDelivery) -> str:
    return f"msg_{delivery.webhook_id.hex}"


class WebhookSink:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        hotels: HotelsConfig,
        clock: Clock,
        timeout: float = 10,
    ) -> None:
        self._session = session
        self._hotels = hotels
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def deliver(self, delivery: ClaimedDelivery) -> SinkResult:
        source = self._hotels.sources.get(delivery.change.data.source)
        if source is None or not source.webhook_url or source.webhook_secret is None:
            return SinkResult(
                ok=False, status=None, message="no webhook_url or webhook_secret configured"
            )
        body = msgspec.json.encode(delivery.change)
        msg_id = webhook_message_id(delivery)
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.sign(
                source.webhook_secret.reveal(), msg_id, timestamp, body
            ),
        }
        try:
            async with self._session.post(
                source.webhook_url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                await response.read()
                ok = 200 <= response.status < 300
                return SinkResult(ok=ok, status=response.status, message=f"HTTP {response.status}")
        except TimeoutError:
            return SinkResult(ok=False, status=None, message="timed out")
        except (aiohttp.ClientError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            return SinkResult(
                ok=False, status=None, message=f"connection failed: {type(exc).__name__}"
            )
