"""Inlet as the sandbox plays it (inlet_bridge/doubles/inlet/sandbox_state.py), for the convergence tests.

A test double with no faults of its own (the model world injects them) and no HTTP: grants are
kept per account (API key) and externalId; a repeated GrantAccess for an active externalId
returns that grant unchanged; after a revocation a repeat makes a new grant ("new") or hands back
the revoked one as a success ("revoked"); UpdateAccess or RevokeAccess of a reference unknown to
the account, or revoked, is a 404 (which the service reads, for a revocation, as "already gone");
a grant starting more than 72 hours ahead is refused with 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from inlet_bridge.domain.access import DesiredGrant

MAX_LEAD = timedelta(hours=72)  # Inlet refuses a grant that starts later than this from now


@dataclass(frozen=True)
class Content:
    """What an Inlet grant says, as a GrantAccess or UpdateAccess sets it."""

    operation: str
    locks: tuple[str, ...]
    start: datetime
    end: datetime
    guest_name: str | None
    email: str | None
    phone: str | None

    @classmethod
    def of(cls, desired: DesiredGrant) -> Content:
        return cls(
            operation=desired.operation,
            locks=desired.access_points,
            start=desired.valid_from,
            end=desired.valid_to,
            guest_name=desired.guest_name,
            email=desired.email,
            phone=desired.phone,
        )


@dataclass
class InletGrant:
    reference_id: str
    account: str
    external_id: str
    active: bool
    content: Content


class ModelInlet:
    """Inlet as the sandbox plays it, with no faults of its own (the world injects them)."""

    def __init__(self, after_revoke: Literal["new", "revoked"]) -> None:
        self.after_revoke = after_revoke
        self.grants: dict[str, InletGrant] = {}
        self.by_external_id: dict[tuple[str, str], str] = {}

    def grant(
        self, account: str, external_id: str, content: Content, now: datetime
    ) -> tuple[int, str | None]:
        if content.start >= content.end or content.start - now > MAX_LEAD:
            return 400, None
        existing = self.by_external_id.get((account, external_id))
        if existing is not None:
            held = self.grants[existing]
            if held.active or self.after_revoke == "revoked":
                return 200, held.reference_id  # the same grant, unchanged
        reference_id = f"ref-{len(self.grants) + 1}"
        self.grants[reference_id] = InletGrant(reference_id, account, external_id, True, content)
        self.by_external_id[(account, external_id)] = reference_id
        return 200, reference_id

    def update(self, account: str, reference_id: str, content: Content) -> int:
        held = self.grants.get(reference_id)
        if held is None or held.account != account or not held.active:
            return 404
        if content.start >= content.end:
            return 400
        held.content = content
        return 200

    def revoke(self, account: str, reference_id: str) -> int:
        held = self.grants.get(reference_id)
        if held is None or held.account != account or not held.active:
            return 404
        held.active = False
        return 200

    def active(self) -> list[InletGrant]:
        return [g for g in self.grants.values() if g.active]
