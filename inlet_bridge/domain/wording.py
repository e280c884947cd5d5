"""What does a stay's access mean, in words an operator reads at 3 a.m.? `access_in_words(...)`.

The grant state comes from `inlet_bridge/domain/states.py` (the same derivation as the access API,
the timeline and the webhooks); this module only says it in plain words, with the doors and
the times in the hotel's own time zone: "code works on L-101 and MAIN until 25 Nov 11:00",
"revocation failed: the code may still open L-101". Pure: `now` is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from inlet_bridge.domain.states import GrantState


def when(moment: datetime, zone: ZoneInfo) -> str:
    """`25 Nov 11:00` in the hotel's time zone."""
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %H:%M}"


def doors(access_points: Sequence[str]) -> str:
    """`L-101`, `L-101 and MAIN`, `L-101, GYM and MAIN`; `no door` for none."""
    names = list(access_points)
    if not names:
        return "no door"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _period(
    valid_from: datetime | None, valid_to: datetime | None, now: datetime, zone: ZoneInfo
) -> str:
    """` from 24 Nov 15:00 until 25 Nov 11:00`, or ` until ...` once it has started."""
    text = ""
    if valid_from is not None and valid_from > now:
        text += f" from {when(valid_from, zone)}"
    if valid_to is not None:
        text += f" until {when(valid_to, zone)}"
    return text


def access_in_words(
    *,
    state: GrantState,
    access_points: Sequence[str],
    valid_from: datetime | None,
    valid_to: datetime | None,
    now: datetime,
    zone: ZoneInfo,
    send_after: datetime | None = None,
) -> str:
    """One sentence for one stay's access. The doors and times are what Inlet holds (or, before
    it holds anything, what is wanted); in the failed states they are what may still work."""
    on = doors(access_points)
    period = _period(valid_from, valid_to, now, zone)
    ended = valid_to is not None and valid_to <= now
    match state:
        case "pending":
            sent = f"; sent from {when(send_after, zone)}" if send_after is not None else ""
            return f"not sent yet: the code will work on {on}{period}{sent}"
        case "granting":
            return f"being granted: the code will work on {on}{period}"
        case "active":
            if ended and valid_to is not None:
                return f"code worked on {on} until {when(valid_to, zone)}; to be revoked"
            return f"code works on {on}{period}"
        case "updating":
            return f"being updated: the current code works on {on}{period}"
        case "revoking":
            return f"being revoked: the code may still open {on} until Inlet confirms"
        case "revoked":
            return "revoked: no code works"
        case "grant_failed":
            return "grant failed: no code works; the guest has no access"
        case "update_failed":
            return f"update failed: the previous code still works on {on}{period}"
        case "revoke_failed":
            still = "" if ended or valid_to is None else f" until {when(valid_to, zone)}"
            return f"revocation failed: the code may still open {on}{still}"
        case "none":
            return "no access: none is wanted"
