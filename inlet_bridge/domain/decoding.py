"""Is an ingest body structurally a booking event (or a batch of them), and if not, why not?

The fast path decodes straight from bytes with msgspec, which refuses unknown fields and
naive timestamps but stops at the first problem. A sender fixing its adapter wants the whole
list at once (docs/contract.md section 1: a 422 lists every problem by JSON path), so when the
fast path fails the body is decoded again as plain JSON and walked against the Struct types
as `msgspec.inspect` describes them. Semantic rules (emails, phones, dates) are in
`validation.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec
from msgspec import inspect as mi

from inlet_bridge.domain.booking import BookingEvent, Problem
from inlet_bridge.domain.wire import BookingEventIn, EventBatch

# A 422 listing thousands of lines helps nobody and costs memory; the first ones are enough
# for a sender to see what its adapter does wrong.
MAX_PROBLEMS: Final = 100
# Unknown keys are echoed in paths; a hostile or broken sender must not make that unbounded.
MAX_KEY_IN_PATH: Final = 64

NOT_JSON: Final = "the body is not valid JSON"
TOO_DEEP: Final = "is nested too deeply"
OFFSET_EXAMPLE: Final = "e.g. 2026-11-23T15:00:00+01:00"

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MSGSPEC_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_SEQUENCE_TYPES: Final = (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)

_T = TypeVar("_T")


def decode_event(body: bytes) -> BookingEvent | list[Problem]:
    """The event in `body`, or every structural problem with it."""
    return _decode(body, BookingEventIn)


def decode_batch(body: bytes) -> tuple[BookingEvent, ...] | list[Problem]:
    """The events of a batch body (`{"events": [...]}`), or every problem, under `events[i]`."""
    decoded = _decode(body, EventBatch)
    return decoded.events if isinstance(decoded, EventBatch) else decoded


def truncate_problems(
    problems: list[Problem], limit: int = MAX_PROBLEMS, *, what: str = "problems"
) -> list[Problem]:
    """At most `limit` problems (or warnings), the last one saying how many were left out."""
    if len(problems) <= limit:
        return problems
    left_out = len(problems) - (limit - 1)
    return [
        *problems[: limit - 1],
        Problem(path="", message=f"{left_out} more {what} not listed"),
    ]


def join_path(prefix: str, key: str) -> str:
    """`prefix.key`, or `prefix["odd key"]` when the key is not a plain name or is cut short."""
    if len(key) <= MAX_KEY_IN_PATH and _PLAIN_KEY.fullmatch(key):
        return f"{prefix}.{key}" if prefix else key
    shown = key if len(key) <= MAX_KEY_IN_PATH else key[:MAX_KEY_IN_PATH] + "..."
    return f"{prefix}[{msgspec.json.encode(shown).decode()}]"


def _decode(body: bytes, kind: type[_T]) -> _T | list[Problem]:
    try:
        return _decode_checked(body, kind)
    except RecursionError:
        # JSON nested thousands deep: no event is shaped like that, so refuse it as a whole.
        return [Problem(path="", message=TOO_DEEP)]


def _decode_checked(body: bytes, kind: type[_T]) -> _T | list[Problem]:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as first:
        # Keep msgspec's verdict: the walk below only explains it more completely.
        error = first
    except msgspec.DecodeError:
        return [Problem(path="", message=NOT_JSON)]
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        # Typed decoding stopped before reaching the broken part of the body.
        return [Problem(path="", message=NOT_JSON)]
    problems: list[Problem] = []
    _walk(raw, mi.type_info(kind), "", problems)
    if not problems:
        # The walk must never turn a refusal into silence; fall back to msgspec's own words.
        problems.append(_from_msgspec(error))
    return truncate_problems(problems)


def _from_msgspec(error: msgspec.ValidationError) -> Problem:
    match = _MSGSPEC_AT.match(str(error))
    if match is None:  # pragma: no cover - the pattern matches any string
        return Problem(path="", message=str(error))
    return Problem(path=(match["path"] or "").lstrip("."), message=match["message"])


def _walk(value: Any, info: mi.Type, path: str, out: list[Problem]) -> None:
    """Append to `out` every way `value` (plain decoded JSON) does not fit `info`."""
    if isinstance(info, mi.Metadata):
        _walk(value, info.type, path, out)
    elif isinstance(info, mi.AnyType):
        return
    elif isinstance(info, mi.UnionType):
        _walk_union(value, info, path, out)
    elif value is None:
        if not isinstance(info, mi.NoneType):
            out.append(Problem(path=path, message="must not be null"))
    elif isinstance(info, mi.StructType):
        _walk_struct(value, info, path, out)
    elif isinstance(info, _SEQUENCE_TYPES):
        _walk_sequence(value, info, path, out)
    else:
        _check_scalar(value, info, path, out)


def _check_scalar(value: Any, info: mi.Type, path: str, out: list[Problem]) -> None:
    """A value that is neither null nor a container, against a scalar type."""
    if isinstance(info, mi.StrType):
        _check_str(value, info, path, out)
    elif isinstance(info, mi.DateTimeType):
        _check_datetime(value, info, path, out)
    elif isinstance(info, mi.LiteralType):
        if not any(type(value) is type(v) and value == v for v in info.values):
            allowed = ", ".join(str(v) for v in info.values)
            out.append(Problem(path=path, message=f"must be one of: {allowed}"))
    elif isinstance(info, mi.BoolType):
        if not isinstance(value, bool):
            out.append(Problem(path=path, message="must be true or false"))
    elif isinstance(info, mi.NoneType):
        out.append(Problem(path=path, message="must be null"))
    # Any other kind is not used by the wire model; if one is added without being handled
    # here, `_decode` still refuses with msgspec's own message (and a unit test fails).


def _walk_union(value: Any, info: mi.UnionType, path: str, out: list[Problem]) -> None:
    if value is None and info.includes_none:
        return
    members = [t for t in info.types if not isinstance(t, mi.NoneType)]
    if len(members) == 1:
        _walk(value, members[0], path, out)
        return
    for member in members:
        attempt: list[Problem] = []
        _walk(value, member, path, attempt)
        if not attempt:
            return
    out.append(Problem(path=path, message="has the wrong type"))


def _walk_struct(value: Any, info: mi.StructType, path: str, out: list[Problem]) -> None:
    if not isinstance(value, dict):
        out.append(Problem(path=path, message="must be an object"))
        return
    known: set[str] = set()
    for field in info.fields:
        known.add(field.encode_name)
        field_path = join_path(path, field.encode_name)
        if field.encode_name in value:
            _walk(value[field.encode_name], field.type, field_path, out)
        elif field.required:
            out.append(Problem(path=field_path, message="is required"))
    if info.forbid_unknown_fields:
        for key in value:
            if key not in known:
                out.append(Problem(path=join_path(path, key), message="is not a known field"))


def _walk_sequence(
    value: Any,
    info: mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType,
    path: str,
    out: list[Problem],
) -> None:
    if not isinstance(value, list):
        out.append(Problem(path=path, message="must be an array"))
        return
    if info.min_length is not None and len(value) < info.min_length:
        out.append(Problem(path=path, message=f"must have at least {_items(info.min_length)}"))
    if info.max_length is not None and len(value) > info.max_length:
        out.append(Problem(path=path, message=f"must have at most {_items(info.max_length)}"))
    for index, item in enumerate(value):
        _walk(item, info.item_type, f"{path}[{index}]", out)


def _check_str(value: Any, info: mi.StrType, path: str, out: list[Problem]) -> None:
    if not isinstance(value, str):
        out.append(Problem(path=path, message="must be a string"))
    elif info.min_length == 1 and not value:
        out.append(Problem(path=path, message="must not be empty"))
    elif info.min_length is not None and len(value) < info.min_length:
        out.append(Problem(path=path, message=f"must be at least {info.min_length} characters"))
    elif info.max_length is not None and len(value) > info.max_length:
        out.append(Problem(path=path, message=f"must be at most {info.max_length} characters"))
    elif info.pattern is not None and re.search(info.pattern, value) is None:
        # msgspec uses re.search as well, so the two agree on what matches.
        out.append(Problem(path=path, message=f"must match the pattern {info.pattern}"))


def _check_datetime(value: Any, info: mi.DateTimeType, path: str, out: list[Problem]) -> None:
    if not isinstance(value, str):
        out.append(Problem(path=path, message="must be an RFC 3339 timestamp string"))
        return
    try:
        # msgspec's own parser, so the walk accepts exactly what the fast path accepts.
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        out.append(Problem(path=path, message=f"is not an RFC 3339 timestamp, {OFFSET_EXAMPLE}"))
        return
    if info.tz is True and parsed.tzinfo is None:
        out.append(Problem(path=path, message=f"must include a UTC offset, {OFFSET_EXAMPLE}"))
    elif info.tz is False and parsed.tzinfo is not None:
        out.append(Problem(path=path, message="must not include a UTC offset"))


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


def problems_under(prefix: str, problems: Sequence[Problem]) -> list[Problem]:
    """`problems` with `prefix` put in front of each path (`events[3]` + `booking.x`)."""
    return [
        Problem(
            path=f"{prefix}.{p.path}" if p.path and p.path[0] != "[" else prefix + p.path,
            message=p.message,
        )
        for p in problems
    ]
