"""The `apaleo` certification scenario: it passes against the emulator, and it can fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inlet_bridge.certify.context import Context
from inlet_bridge.certify.run import run_certify
from inlet_bridge.certify.scenarios import in_scope
from inlet_bridge.certify.scenarios_apaleo import reservation_lifecycle
from inlet_bridge.sinks import SinkResult
from inlet_bridge.sinks.apaleo import ApaleoSink
from inlet_bridge.store.deliveries import ClaimedDelivery

from ..support import harness


async def test_the_apaleo_scenario_is_in_scope_and_passes(
    pg_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert [s.id for s in in_scope(["apaleo"])] == ["apaleo"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = pg_server
    code = await run_certify(env, out=tmp_path, scope=["apaleo"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "1 passed, 0 failed (0 not run)" in printed
    report = (tmp_path / "report.md").read_text()
    for check in (
        "access created from the apaleo reservation",
        "the keypad code is written back to the reservation's comment, the hotel's note kept",
        "a repeated notification and one for an unchanged reservation change nothing",
        "access revoked at Inlet on its reference",
        "the code is removed from the comment",
    ):
        assert f"| {check} | pass |" in report
    assert "Ingrid" not in report
    assert "ingrid@example.no" not in report


async def test_the_apaleo_scenario_fails_when_the_code_is_not_written_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def nothing_written(self: ApaleoSink, delivery: ClaimedDelivery) -> SinkResult:
        return SinkResult(ok=True, status=204, message="pretended")

    monkeypatch.setattr(ApaleoSink, "deliver", nothing_written)
    async with harness(database_url) as h:
        ctx = Context(h, "apaleo")
        await ctx.begin()
        await reservation_lifecycle(ctx)
    failed = [c.name for c in ctx.checks if c.status == "fail"]
    # (The comment never held a code, so "removed from the comment" still holds.)
    assert failed == [
        "the keypad code is written back to the reservation's comment, the hotel's note kept"
    ]
    assert sum(c.status == "pass" for c in ctx.checks) >= 8
