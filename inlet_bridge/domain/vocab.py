"""What are the service's words? One home for the names every layer shares.

Calls, their reasons and priorities, escalation severities: the database stores these strings,
the API and the metrics show them, and the domain decides with them. Each is spelled once, here.
"""

from __future__ import annotations

from typing import Final, Literal

# What a call asks Inlet to do (the `operation` column of inlet_calls; Inlet's three calls).
CallOperation = Literal["grant", "update", "revoke"]
CALL_OPERATIONS: Final[tuple[CallOperation, ...]] = ("grant", "update", "revoke")

# A call as the plan sees it: a recovery is stored as a GrantAccess with the reason "recover".
PlannedOperation = Literal["grant", "update", "revoke", "recover"]

# One step of a plan: a call, or "cancel" (withdraw a queued call no longer wanted).
OperationKind = Literal["grant", "update", "revoke", "recover", "cancel"]

# Why a call was queued: the booking's state, an operator's or Inlet's re-sync (a new code), or
# a recovery (a GrantAccess without contact details that gets back a grant to revoke it).
CallReason = Literal["booking", "resync", "recover"]
BOOKING: Final = "booking"
RESYNC: Final = "resync"
RECOVER: Final = "recover"

# Claim order of the retry table: revocations first (a recovery is the first half of one).
PRIORITY: Final[dict[PlannedOperation, int]] = {"revoke": 0, "recover": 0, "update": 1, "grant": 2}

# How loudly an escalation calls for a person.
Severity = Literal["critical", "high", "warning"]
SEVERITIES: Final[tuple[Severity, ...]] = ("critical", "high", "warning")

# What an escalation is filed under: a call's operation, "resync" for a failed re-sync, or the
# kind of sink of a delivery to the PMS that gave up. (A stay problem has none.)
EscalationOperation = Literal["grant", "update", "revoke", "resync", "webhook", "spectra", "apaleo"]
ESCALATION_OPERATIONS: Final[tuple[EscalationOperation, ...]] = (
    "grant",
    "update",
    "revoke",
    "resync",
    "webhook",
    "spectra",
    "apaleo",
)

# How a call attempt ended, as the call worker classifies Inlet's answer.
Outcome = Literal["success", "temporary", "permanent"]
