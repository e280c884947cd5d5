"""The token bucket: a burst at once, then `per_second`, and how long to wait when empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inlet_bridge.domain.ratelimit import Bucket, take

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run(times: list[float], *, per_second: float, burst: int) -> list[float | None]:
    bucket: Bucket | None = None
    waits = []
    for t in times:
        bucket, wait = take(
            bucket, now=T0 + timedelta(seconds=t), per_second=per_second, burst=burst
        )
        waits.append(None if wait is None else round(wait, 3))
    return waits


@pytest.mark.parametrize(
    ("times", "per_second", "burst", "expected"),
    [
        pytest.param([0, 0, 0], 1, 2, [None, None, 1.0], id="burst-then-wait"),
        pytest.param([0, 0, 0.5], 1, 1, [None, 1.0, 0.5], id="half-refilled"),
        pytest.param([0, 0, 1.0], 1, 1, [None, 1.0, None], id="refilled-after-a-second"),
        pytest.param([0, 10, 10, 10], 1, 2, [None, None, None, 1.0], id="refill-capped-at-burst"),
        pytest.param([0, 0, 0, 0], 4, 2, [None, None, 0.25, 0.25], id="fast-rate-short-wait"),
        pytest.param([5, 0, 0], 1, 1, [None, 1.0, 1.0], id="clock-back-refills-nothing"),
    ],
)
def test_token_bucket(
    times: list[float], per_second: float, burst: int, expected: list[float | None]
) -> None:
    assert run(times, per_second=per_second, burst=burst) == expected
