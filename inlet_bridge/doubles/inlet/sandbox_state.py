"""What does the Inlet sandbox remember, and how does it decide each answer?

The sandbox's behaviour without HTTP: grants, the messages Inlet would have sent, lock
replacements, armed faults and the log of requests. Time comes from an injected clock and
every random choice from an injected random.Random, so tests are deterministic.

Where Inlet's behaviour is not published, the sandbox can play each reasonable reading
(`Readings`), so the service is tested under all of them:
- `after_revoke`: a GrantAccess repeating the externalId of a revoked grant makes a new grant
  ("new"), or hands back the revoked grant as a success ("revoked");
- `accounts`: each API key is its own account, whose grants no other key can see or change
  ("per_key"), or all keys share one account ("shared").
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import phonenumbers

from inlet_bridge.clock import Now
from inlet_bridge.inlet.protocol import (
    AccessOperation,
    AwareDatetime,
    CallKind,
    GrantRequest,
    InletResponse,
    UpdateRequest,
)

GrantState = Literal["active", "revoked"]
Answer = tuple[int, InletResponse]

MAX_LEAD = timedelta(hours=72)  # Inlet refuses bookings sent earlier than this before the start
LINK_BASE = "https://sandbox.inlet.invalid/a/"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Readings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the sandbox reads what Inlet does not publish (see the module's docstring)."""

    after_revoke: Literal["new", "revoked"] = "new"
    accounts: Literal["per_key", "shared"] = "per_key"


class SandboxGrant(msgspec.Struct, frozen=True, kw_only=True):
    """One grant as Inlet holds it; shown by GET /_sandbox/grants under Inlet's field names."""

    reference_id: str = msgspec.field(name="ReferenceId")
    external_id: str = msgspec.field(name="externalId")
    state: GrantState
    operation: AccessOperation
    partner: str
    booking_id: str = msgspec.field(name="bookingId")
    locks: tuple[str, ...]
    start: AwareDatetime
    end: AwareDatetime
    guest_name: str | None = msgspec.field(default=None, name="guestName")
    email: str | None = None
    phone_number: str | None = msgspec.field(default=None, name="phoneNumber")
    country_code: str | None = msgspec.field(default=None, name="countryCode")
    code: str | None
    code_formatted: str | None = msgspec.field(name="codeFormatted")
    link: str
    # Position in the sandbox's event sequence when the code was issued; compared with lock
    # replacements, so it works with a frozen test clock.
    issued_seq: int = msgspec.field(name="issuedSeq")
    # The account (the API key's digest, or "shared") that holds the grant.
    account: str = "shared"


class SentMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message Inlet would have sent to the guest."""

    external_id: str = msgspec.field(name="externalId")
    reference_id: str = msgspec.field(name="ReferenceId")
    channel: Literal["email", "sms"]
    recipient: str
    code: str | None
    code_formatted: str | None = msgspec.field(name="codeFormatted")
    link: str
    reason: Literal["grant", "update"]
    at: AwareDatetime


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request to an Inlet endpoint and what the sandbox answered (status None: no answer,
    the client went away first)."""

    seq: int
    at: AwareDatetime
    path: str
    body: Any
    status: int | None = None
    response: Any = None
    fault: str | None = None


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of POST /_sandbox/faults.

    status: answer `status` without acting. timeout: wait `seconds`, then answer 504 without
    acting. latency: wait `seconds`, then act and answer normally (with a client timeout
    shorter than that, a lost response, and the act comes late). lost_answer: act at once,
    then wait `seconds` before answering (with a client timeout shorter than that, the call
    is done but its answer is lost). success_false: answer 200 with success false.
    """

    kind: Literal["status", "timeout", "latency", "lost_answer", "success_false"]
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 500
    retryable: bool | None = None
    message: str | None = None
    seconds: Annotated[float, msgspec.Meta(ge=0, le=600)] = 0.0
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    rate: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    operations: tuple[CallKind, ...] | None = None
    retry_after: Annotated[int, msgspec.Meta(ge=0)] | None = None


@dataclass
class _ArmedFault:
    fault: Fault
    remaining: int | None


class _Grants(dict[str, SandboxGrant]):
    """The grants by ReferenceId, with the codes active on each lock kept as grants are stored
    (every change is an assignment), so a new code is checked without reading every grant."""

    def __init__(self) -> None:
        super().__init__()
        self._codes: dict[str, Counter[str]] = {}

    def __setitem__(self, key: str, grant: SandboxGrant) -> None:
        old = self.get(key)
        if old is not None:
            self._count(old, -1)
        super().__setitem__(key, grant)
        self._count(grant, 1)

    def _count(self, grant: SandboxGrant, step: int) -> None:
        if grant.state != "active" or grant.code is None:
            return
        for lock in grant.locks:
            codes = self._codes.setdefault(lock, Counter())
            codes[grant.code] += step
            if codes[grant.code] <= 0:
                del codes[grant.code]

    def active_codes(self, locks: tuple[str, ...]) -> set[str]:
        taken: set[str] = set()
        for lock in locks:
            taken.update(self._codes.get(lock, ()))
        return taken


def _refusal(status: int, message: str) -> Answer:
    return status, InletResponse(success=False, message=message, retryable=False)


# The request fields a grant keeps as sent; externalId is fixed when the grant is made.
_COPIED = tuple(
    sorted(
        set(GrantRequest.__struct_fields__) & set(SandboxGrant.__struct_fields__) - {"external_id"}
    )
)


def _copied(request: GrantRequest | UpdateRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in _COPIED}


def _keypad(code: str | None) -> str | None:
    """Inlet's keypad form of a code, e.g. #1234*."""
    return None if code is None else f"#{code}*"


def _problem(request: GrantRequest | UpdateRequest) -> str | None:
    """The first thing wrong with a request's fields, named by Inlet's field name."""
    for wire, value in (
        ("partner", request.partner),
        ("bookingId", request.booking_id),
        ("externalId", request.external_id),
    ):
        if not value.strip():
            return f"{wire} is required"
    if not request.locks or any(not lock.strip() for lock in request.locks):
        return "locks must name at least one lock, and no empty names"
    if request.start >= request.end:
        return "start must be before end"
    if request.email is not None and not _EMAIL.match(request.email):
        return "email is not a valid email address"
    if (request.phone_number is None) != (request.country_code is None):
        return "phoneNumber and countryCode must be given together"
    if request.phone_number is not None and request.country_code is not None:
        if not (request.phone_number.isdigit() and request.country_code.isdigit()):
            return "phoneNumber and countryCode must contain digits only"
        try:
            number = phonenumbers.parse(f"+{request.country_code}{request.phone_number}", None)
        except phonenumbers.NumberParseException:
            return "phoneNumber is not a valid number for countryCode"
        if not phonenumbers.is_possible_number(number):
            return "phoneNumber is not a valid number for countryCode"
    return None


class SandboxState:
    """Everything the sandbox knows; one instance per app, stored under an AppKey."""

    def __init__(
        self,
        *,
        clock: Now,
        rng: random.Random,
        api_keys: Collection[str] | None,
        sms_locks: Collection[str] | None,
        readings: Readings | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.sms_locks = None if sms_locks is None else frozenset(sms_locks)
        self.readings = readings or Readings()
        # Set when the app shuts down, so injected waits end instead of holding the server.
        self.stopping = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        self.grants: dict[str, SandboxGrant] = _Grants()
        # (account, externalId) -> the ReferenceId of the latest grant made under it
        self.by_external_id: dict[tuple[str, str], str] = {}
        self.messages: list[SentMessage] = []
        self.requests: list[RecordedRequest] = []
        self.faults: list[_ArmedFault] = []
        # externalIds of calls that found their effect already done (a repeated GrantAccess, a
        # RevokeAccess of a revoked grant): a campaign tells double calls from these
        self.repeats: list[str] = []
        self.lock_replaced_seq: dict[str, int] = {}
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- requests and faults --------------------------------------------------------------

    def begin_request(self, path: str, body: Any) -> int:
        """Record a request on arrival (so the log is in arrival order); returns its index."""
        self.requests.append(
            RecordedRequest(seq=len(self.requests) + 1, at=self.clock(), path=path, body=body)
        )
        return len(self.requests) - 1

    def finish_request(
        self, index: int, status: int | None, response: Any, fault: str | None
    ) -> None:
        self.requests[index] = msgspec.structs.replace(
            self.requests[index], status=status, response=response, fault=fault
        )

    def arm_fault(self, fault: Fault) -> None:
        self.faults.append(_ArmedFault(fault=fault, remaining=fault.count))

    def take_fault(self, call: CallKind) -> Fault | None:
        """The fault that applies to this call, if any, counting it against its budget."""
        for armed in self.faults:
            fault = armed.fault
            if fault.operations is not None and call not in fault.operations:
                continue
            if fault.rate is not None and self.rng.random() >= fault.rate:
                continue
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining == 0:
                    self.faults.remove(armed)
            return fault
        return None

    def authorized(self, header: str | None) -> bool:
        return self.account_of(header) is not None

    def account_of(self, header: str | None) -> str | None:
        """The account an Authorization header speaks for, or None when it is refused."""
        scheme, _, key = (header or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        if self.api_keys is not None and key not in self.api_keys:
            return None
        if self.readings.accounts == "shared":
            return "shared"
        return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]

    def _visible(self, reference_id: str, account: str) -> SandboxGrant | None:
        grant = self.grants.get(reference_id)
        return grant if grant is not None and grant.account == account else None

    # -- Inlet's calls ----------------------------------------------------------------------

    def grant(self, request: GrantRequest, account: str = "shared") -> Answer:
        problem = _problem(request)
        if problem is not None:
            return _refusal(400, problem)
        if request.start - self.clock() > MAX_LEAD:
            return _refusal(
                400, "start is more than 72 hours ahead; send bookings no earlier than 72 h"
            )
        existing = self.by_external_id.get((account, request.external_id))
        if existing is not None:
            held = self.grants[existing]
            if held.state == "active" or self.readings.after_revoke == "revoked":
                # Idempotent by externalId: the same grant, unchanged, and no new messages
                # (under the "revoked" reading, even a revoked one, handed back as a success).
                self.repeats.append(held.external_id)
                return self._granted(held, "Access granted")
        reference_id = f"ref-{self.rng.getrandbits(64):016x}"
        code = self._new_code(request.operation, request.locks)
        grant = SandboxGrant(
            reference_id=reference_id,
            external_id=request.external_id,
            state="active",
            **_copied(request),
            code=code,
            code_formatted=_keypad(code),
            link=self._new_link(),
            issued_seq=self._next_seq(),
            account=account,
        )
        self.grants[reference_id] = grant
        self.by_external_id[(account, grant.external_id)] = reference_id
        self._send_messages(grant, "grant")
        return self._granted(grant, "Access granted")

    def update(self, request: UpdateRequest, account: str = "shared") -> Answer:
        grant = self._visible(request.reference_id, account)
        if grant is None:
            return _refusal(404, "Unknown ReferenceId")
        if grant.state != "active":
            return _refusal(404, "Access has been revoked")
        problem = _problem(request)
        if problem is not None:
            return _refusal(400, problem)
        if request.external_id != grant.external_id:
            return _refusal(400, "externalId does not match the grant")
        lock_replaced = any(
            self.lock_replaced_seq.get(lock, 0) > grant.issued_seq for lock in request.locks
        )
        new_code = request.regenerate or lock_replaced or request.operation != grant.operation
        contact_changed = (request.email, request.phone_number, request.country_code) != (
            grant.email,
            grant.phone_number,
            grant.country_code,
        )
        code = self._new_code(request.operation, request.locks) if new_code else grant.code
        updated = msgspec.structs.replace(
            grant,
            **_copied(request),
            code=code,
            code_formatted=_keypad(code),
            link=self._new_link() if new_code else grant.link,
            issued_seq=self._next_seq() if new_code else grant.issued_seq,
        )
        self.grants[grant.reference_id] = updated
        if new_code or contact_changed:
            self._send_messages(updated, "update")
        return self._granted(updated, "Access updated")

    def revoke(self, reference_id: str, account: str = "shared") -> Answer:
        grant = self._visible(reference_id, account)
        if grant is None:
            return _refusal(404, "Unknown ReferenceId")
        if grant.state != "active":
            self.repeats.append(grant.external_id)
            return _refusal(404, "Access already revoked")
        self.grants[reference_id] = msgspec.structs.replace(grant, state="revoked")
        return 200, InletResponse(success=True, message="Access revoked", reference_id=reference_id)

    # -- the physical world -----------------------------------------------------------------

    def replace_lock(self, lock: str) -> None:
        """A lock swapped for a new one (or its algorithm changed): codes issued before no
        longer open it."""
        self.lock_replaced_seq[lock] = self._next_seq()

    def opens(self, code: str, lock: str, at: datetime) -> tuple[bool, str]:
        """Would `code` open `lock` at `at`? With the reason, for test failure messages."""
        code = code.strip().lstrip("#").rstrip("*")
        candidates = [g for g in self.grants.values() if g.code == code]
        if not candidates:
            return False, "no grant has this code"
        reasons = []
        for grant in candidates:
            reason = self._why_not(grant, lock, at)
            if reason is None:
                return True, f"opens for {grant.external_id}"
            reasons.append(reason)
        return False, "; ".join(reasons)

    def _why_not(self, grant: SandboxGrant, lock: str, at: datetime) -> str | None:
        if grant.state != "active":
            return "grant revoked"
        if lock not in grant.locks:
            return f"grant does not include lock {lock}"
        if at < grant.start:
            return "before the access period"
        if at >= grant.end:
            return "after the access period"
        if self.lock_replaced_seq.get(lock, 0) > grant.issued_seq:
            return f"code issued before lock {lock} was replaced"
        return None

    # -- helpers ------------------------------------------------------------------------------

    def _granted(self, grant: SandboxGrant, message: str) -> Answer:
        return 200, InletResponse(
            success=True,
            message=message,
            reference_id=grant.reference_id,
            code=grant.code,
            code_formatted=grant.code_formatted,
            link=grant.link,
        )

    def _new_code(self, operation: AccessOperation, locks: tuple[str, ...]) -> str | None:
        if operation == "unlock":
            return None  # the guest opens with the link; there is no PIN
        # Two active codes on one lock would make `opens` ambiguous, as on a real keypad.
        grants = self.grants
        assert isinstance(grants, _Grants)
        taken = grants.active_codes(locks)
        while True:
            length = self.rng.randint(4, 6)
            code = "".join(self.rng.choice("0123456789") for _ in range(length))
            if code not in taken:
                return code

    def _new_link(self) -> str:
        return f"{LINK_BASE}{self.rng.getrandbits(96):024x}"

    def _sms_capable(self, locks: tuple[str, ...]) -> bool:
        # Inlet texts only when SMS is set up for the lock; for a grant over several locks we
        # require it on every one of them.
        return self.sms_locks is None or all(lock in self.sms_locks for lock in locks)

    def _send_messages(self, grant: SandboxGrant, reason: Literal["grant", "update"]) -> None:
        recipients: list[tuple[Literal["email", "sms"], str]] = []
        if grant.email is not None:
            recipients.append(("email", grant.email))
        has_phone = grant.phone_number is not None and grant.country_code is not None
        if has_phone and self._sms_capable(grant.locks):
            recipients.append(("sms", f"+{grant.country_code}{grant.phone_number}"))
        for channel, recipient in recipients:
            self.messages.append(
                SentMessage(
                    external_id=grant.external_id,
                    reference_id=grant.reference_id,
                    channel=channel,
                    recipient=recipient,
                    code=grant.code,
                    code_formatted=grant.code_formatted,
                    link=grant.link,
                    reason=reason,
                    at=self.clock(),
                )
            )
