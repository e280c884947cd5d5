"""May this source make another request now? A token bucket, as a pure rule.

A bucket holds up to `burst` tokens and gains `per_second` of them every second; a request
takes one. An empty bucket answers how long until the next token, for `Retry-After`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    tokens: float
    at: datetime


def take(
    bucket: Bucket | None, *, now: datetime, per_second: float, burst: int
) -> tuple[Bucket, float | None]:
    """The bucket after one request, and None when it is admitted, or else the seconds to wait.

    A new source starts with a full bucket. A clock that went back refills nothing.
    """
    if bucket is None:
        tokens = float(burst)
    else:
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        tokens = min(float(burst), bucket.tokens + elapsed * per_second)
    if tokens >= 1.0:
        return Bucket(tokens=tokens - 1.0, at=now), None
    return Bucket(tokens=tokens, at=now), (1.0 - tokens) / per_second
