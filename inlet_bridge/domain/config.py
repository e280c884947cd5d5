"""What does each hotel want: its doors, its rules, its credentials? The configuration's values.

The properties file (TOML, mounted from a ConfigMap) is decoded into these frozen Structs by
the loader (`inlet_bridge/properties.py`, which reads the file and the secrets); the domain decides
with them. Unknown keys and bad values are refused by their types and constraints, so a file
that loads is one the service can run with.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

from inlet_bridge.domain.booking import BookingType, Communication, StayStatus
from inlet_bridge.domain.secret import Secret

HARD_MAX_WINDOW_HOURS = 72  # Inlet: never earlier than 72 h before arrival
# A cancelled, no-show or deleted stay wants no grant, whatever the property lists.
ALWAYS_REVOKING: tuple[StayStatus, ...] = ("cancelled", "no_show")

PositiveMinutes = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)]
OffsetMinutes = Annotated[int, msgspec.Meta(ge=-24 * 60, le=24 * 60)]
WindowHours = Annotated[float, msgspec.Meta(gt=0, le=HARD_MAX_WINDOW_HOURS)]


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class InletSettings(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    partner: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    # Required: a production file without it must not quietly talk to a local sandbox.
    base_url: str
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


class RetryPolicy(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inlet's rule: every 5 minutes, at most 60 minutes, at most 30 attempts; first to run out ends it."""

    interval_minutes: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 30
    max_minutes: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 60.0


class RateLimit(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A source's token bucket: `burst` requests at once, refilled at `per_second`."""

    per_second: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 50.0
    burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100


class Source(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A PMS (or adapter) allowed to post events for the properties it serves."""

    # The property_ids this source may post events for and read access of (required).
    properties: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    token: Secret | None = None
    signing_secrets: tuple[Secret, ...] = ()
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    rate_limit: RateLimit = RateLimit()


OperatorRole = Literal["viewer", "operator", "admin"]


class Operator(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named person (or tool) with a role, optionally limited to some properties."""

    token: Secret
    role: OperatorRole
    properties: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)] | None = None


class Resource(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A room, meeting room or other bookable thing, as the PMS names it."""

    access_points: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    kind: Literal["room", "meeting_room", "other"] = "room"
    common_doors: tuple[str, ...] | None = None  # None: the property's common doors


class Door(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A shared access point's limits (lock systems hold a limited number of codes)."""

    capacity: Annotated[int, msgspec.Meta(ge=1)] | None = None


class CheckRule(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When access starts (check-in) or ends (check-out): at the booking's time or at the PMS status."""

    rule: Literal["booking_time", "pms_status"] = "booking_time"
    offset_minutes: OffsetMinutes = 0


class CommunicationDefaults(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    private: Communication = "guest"
    company: Communication = "guest"
    agency: Communication = "none"
    group: Communication = "organizer"

    def for_type(self, booking_type: BookingType) -> Communication:
        value: Communication = getattr(self, booking_type)
        return value


class EventRules(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How time from a PMS is trusted: an event's `occurred_at` more than this ahead of its
    receipt is refused (422), and never counts as later than receipt plus this in the fold."""

    max_clock_skew_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 300.0

    @property
    def max_clock_skew(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)


class InletAccount(msgspec.Struct, frozen=True, kw_only=True):
    """Where a property's calls go: Inlet's base URL and the property's API key; `account` is a
    digest of both, stored with each grant so a 404 is believed only from the grant's account."""

    base_url: str
    api_key: Secret
    account: str


def account_digest(base_url: str, api_key: str) -> str:
    """A short, one-way digest naming an Inlet account (base URL and key) without the key."""
    material = f"{base_url.rstrip('/')}\n{api_key}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


class Property(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel (or other site) and its access rules."""

    name: str
    timezone: ZoneInfo
    inlet_api_key: Secret
    # The Inlet environment of this property; unset: [inlet] base_url.
    inlet_base_url: str | None = None
    send_window_hours: WindowHours = 24.0
    group_window_hours: WindowHours | None = None
    common_doors: tuple[str, ...] = ()
    doors: dict[str, Door] = {}
    resources: dict[str, Resource] = {}
    checkin: CheckRule = CheckRule()
    checkout: CheckRule = CheckRule()
    # Statuses that remove access at once; cancelled and no_show always do (a list without
    # them is refused), the list may add others such as checked_out.
    revoking_statuses: tuple[StayStatus, ...] = ("cancelled", "no_show", "checked_out")
    communication: CommunicationDefaults = CommunicationDefaults()
    unassigned_room_lead_hours: Annotated[float, msgspec.Meta(ge=0, le=72)] = 4.0
    operation: Literal["code", "unlock"] = "code"


class SpectraConnection(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel's Spectra PMS: polled for reservations, written back with access codes.

    Its events carry the source `spectra-<name>`.
    """

    property_id: str
    base_url: str
    username: Secret
    password: Secret
    hotel_code: Annotated[str, msgspec.Meta(min_length=1, max_length=10)]
    poll_interval_seconds: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 60.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0
    # Hold access while the reservation's balance is unpaid (Inlet's Spectra link can too).
    hold_unpaid: bool = False
    # Hold a stay's access, before its arrival and until check-in, while its room is not in one
    # of these housekeeping states (e.g. ["Clean", "Inspected"]); empty: no room hold.
    hold_until_room_status: tuple[
        Annotated[str, msgspec.Meta(min_length=1, max_length=50)], ...
    ] = ()
    write_back: bool = True
    # How far back a first start (or a gap too old for the feed) fills from the reservation list.
    backfill_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 30)] = 72.0

    def source(self, name: str) -> str:
        return f"spectra-{name}"


class ApaleoConnection(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hotel on apaleo: notified by webhook, reservations fetched, codes written back.

    Its events carry the source `apaleo-<name>`; its receiver is
    `POST /v1/adapters/apaleo/<name>/webhook` (docs/contract.md section 4).
    """

    property_id: str
    apaleo_property_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    client_id: Secret
    client_secret: Secret
    # The login apaleo's webhook subscription sends (basic auth on the receiver).
    webhook_username: Secret
    webhook_password: Secret
    api_url: str = "https://api.apaleo.com"
    identity_url: str = "https://identity.apaleo.com"
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0
    # Rooms as the properties file names them: the unit's name (`A.101`) or its id.
    unit_key: Literal["name", "id"] = "name"
    # How often the reservations of the window ahead are read whole (missed notifications).
    reconcile_interval_seconds: Annotated[float, msgspec.Meta(ge=10, le=24 * 3600)] = 900.0
    write_back: bool = True

    def source(self, name: str) -> str:
        return f"apaleo-{name}"


class HotelsConfig(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    inlet: InletSettings
    retry: RetryPolicy = RetryPolicy()
    events: EventRules = EventRules()
    sources: dict[str, Source] = {}
    properties: dict[str, Property] = {}
    spectra: dict[str, SpectraConnection] = {}
    apaleo: dict[str, ApaleoConnection] = {}
    operators: dict[str, Operator] = {}
    # Hosts reached over plain http although not on loopback: a test environment's Inlet
    # imitation or an egress proxy on a private network. Codes and keys travel in clear to
    # them; start-up says so in a warning. Empty: https everywhere but loopback.
    plain_http_hosts: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=253)], ...] = ()

    def served_properties(self, source: str) -> frozenset[str]:
        """The properties `source` may post for and read: its list, or its Spectra connection's."""
        served: set[str] = set()
        configured = self.sources.get(source)
        if configured is not None:
            served.update(configured.properties)
        spectra = self.spectra_for_source(source)
        if spectra is not None:
            served.add(spectra[1].property_id)
        apaleo = self.apaleo_for_source(source)
        if apaleo is not None:
            served.add(apaleo[1].property_id)
        return frozenset(served)

    def inlet_account(self, property_id: str) -> InletAccount | None:
        """The Inlet account a property's calls go to; None for a property not configured."""
        prop = self.properties.get(property_id)
        if prop is None:
            return None
        base_url = prop.inlet_base_url or self.inlet.base_url
        key = prop.inlet_api_key
        return InletAccount(
            base_url=base_url, api_key=key, account=account_digest(base_url, key.reveal())
        )

    def apaleo_for_source(self, source: str) -> tuple[str, ApaleoConnection] | None:
        """The apaleo connection whose events carry this source, if any."""
        for name, connection in self.apaleo.items():
            if connection.source(name) == source:
                return name, connection
        return None

    def spectra_for_source(self, source: str) -> tuple[str, SpectraConnection] | None:
        """The Spectra connection whose events carry this source, if any."""
        for name, connection in self.spectra.items():
            if connection.source(name) == source:
                return name, connection
        return None
