"""What do the PMS and its sinks hear when access changes? The "access changed" record.

One record per change (granted, updated, revoked, failed), written in the same transaction as
the change, delivered to every sink of the booking's source: a PMS's webhook receiver
(Standard Webhooks), or the Spectra write-back. One mechanism for both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from service.properties import HotelsConfig

ChangeKind = Literal["access.granted", "access.updated", "access.revoked", "access.failed"]


class AccessChangeData(msgspec.Struct, frozen=True, kw_only=True):
    """The access of one stay after the change (personal data: codes and links)."""

    source: str
    booking_id: str
    stay_id: str
    grant_key: str
    property_id: str
    state: Literal["active", "revoked", "escalated"]
    access_points: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    reference_id: str | None = None
    code: str | None = None
    code_formatted: str | None = None
    link: str | None = None
    previous_code_formatted: str | None = None  # set when this change replaced a code
    message: str | None = None  # Inlet's last message
    reason: str | None = None  # why it failed (access.failed)


class AccessChange(msgspec.Struct, frozen=True, kw_only=True):
    """The webhook payload, in the Standard Webhooks shape: type, timestamp, data."""

    type: ChangeKind
    timestamp: datetime
    data: AccessChangeData


def sinks_for(source: str, hotels: HotelsConfig) -> list[str]:
    """Where changes of this source's bookings go: `webhook:<source>`, `spectra:<connection>`."""
    sinks = []
    configured = hotels.sources.get(source)
    if configured is not None and configured.webhook_url:
        sinks.append(f"webhook:{source}")
    spectra = hotels.spectra_for_source(source)
    if spectra is not None and spectra[1].write_back:
        sinks.append(f"spectra:{spectra[0]}")
    return sinks
