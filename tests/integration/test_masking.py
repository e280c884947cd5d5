"""Do the masked values the service shows follow its LOG_MASK_KEY?

Two services with the same key (two replicas) give one guest the same tags in the booking
timeline; a service with another key gives other tags; no tag is the unkeyed hash that a list
of every 4-digit code would reverse.
"""

from __future__ import annotations

import hashlib
from typing import Any

from inlet_bridge.domain.secret import Secret
from inlet_bridge.logs import Masker

from ..support import START, event, harness

KEY = "replicas-of-one-installation-0123456789"
OTHER_KEY = "another-installation-entirely-0123456789"


async def masked_timeline(database_url: str, key: str, *, post: bool) -> dict[str, Any]:
    async with harness(database_url, LOG_MASK_KEY=key) as h:
        if post:
            await h.post(event("e1", arrival=START))
            await h.settle()
        return await h.timeline("R-1001", reveal=False)


def guest(timeline: dict[str, Any]) -> dict[str, str]:
    (stay,) = timeline["events"][0]["event"]["booking"]["stays"]
    (first,) = stay["guests"]
    return dict(first)


async def test_timeline_tags_follow_the_key(database_url: str) -> None:
    first = await masked_timeline(database_url, KEY, post=True)
    # a second service on the same database (another replica) with the same key
    second = await masked_timeline(database_url, KEY, post=False)
    other = await masked_timeline(database_url, OTHER_KEY, post=False)

    masker = Masker(Secret(KEY))
    assert guest(first) == {
        "name": masker.mask("Ola Nordmann"),
        "email": masker.mask("ola@example.no"),
        "phone": masker.mask("+4791234567"),
    }
    assert guest(second) == guest(first)
    assert set(guest(other).values()).isdisjoint(guest(first).values())
    code = first["grants"][0]["code"]
    assert code == second["grants"][0]["code"] != other["grants"][0]["code"]
    assert code.startswith("<masked:")
    unkeyed = {
        f"<masked:{hashlib.sha256(f'{n:0{width}d}'.encode()).hexdigest()[:10]}>"
        for width in (4, 5, 6)
        for n in range(10**width)
    }
    assert code not in unkeyed
    for text in ("Ola Nordmann", "ola@example.no", "+4791234567"):
        assert text not in str(first)
