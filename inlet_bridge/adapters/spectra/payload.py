"""How does JSON whose keys come in any case become frozen Structs, one bad item at a time?

Generic machinery under `mapping.py`: the caller passes the key spellings its Structs
expect (lower-case key -> spelling) and the wrapper keys a list may hide under. No Spectra
names live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class SpectraPayloadError(ValueError):
    """A payload does not have the shape we expect; the message names the path, never a value."""


def spellings(structs: Iterable[type[msgspec.Struct]]) -> dict[str, str]:
    """Lower-case wire name -> wire name, for every field of the given Structs."""
    return {
        f.encode_name.lower(): f.encode_name for t in structs for f in msgspec.structs.fields(t)
    }


def canonical_keys(obj: Any, spelling: Mapping[str, str]) -> Any:
    """Respell every known key as `spelling` says, at any depth, whatever its case."""
    if isinstance(obj, dict):
        return {
            (spelling.get(k.lower(), k) if isinstance(k, str) else k): canonical_keys(v, spelling)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [canonical_keys(v, spelling) for v in obj]
    return obj


def convert(obj: Any, type_: type[T], spelling: Mapping[str, str]) -> T:
    """One decoded JSON value as `type_`, keys matched without case; unknown keys ignored."""
    try:
        return msgspec.convert(canonical_keys(obj, spelling), type_)
    except msgspec.ValidationError as exc:
        raise SpectraPayloadError(str(exc)) from None


def convert_list(
    obj: Any, type_: type[T], spelling: Mapping[str, str], wrappers: Iterable[str]
) -> tuple[list[T], list[str]]:
    """A list answer item by item: one bad item must not hide the others.

    Accepts a bare list, a list under one of the `wrappers` keys, or a single object (a list
    of one). Returns the items that fit and one problem line per item that did not.
    """
    if isinstance(obj, dict):
        lowered = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
        wrapped = next((lowered[k] for k in wrappers if k in lowered), None)
        obj = wrapped if isinstance(wrapped, list) else [obj]
    if not isinstance(obj, list):
        raise SpectraPayloadError(f"expected a list, got {type(obj).__name__}")
    items: list[T] = []
    problems: list[str] = []
    for index, raw in enumerate(obj):
        try:
            items.append(convert(raw, type_, spelling))
        except SpectraPayloadError as exc:
            message = str(exc)
            if "`$" in message:
                problems.append(message.replace("`$", f"`$[{index}]", 1))
            else:
                problems.append(f"{message} - at `$[{index}]`")
    return items, problems
