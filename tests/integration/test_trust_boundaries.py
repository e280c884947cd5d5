"""Trust boundaries end to end: nothing reaches Inlet for a hotel the source does not serve;
outgoing webhook ids are unique across databases; the CLI audits what it does; production
never starts a PostgreSQL of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inlet_bridge.sinks.webhook import webhook_message_id
from inlet_bridge.store.db import Database
from inlet_bridge.store.deliveries import DeliveryStore

from ..conftest import scratch_database
from ..support import (
    OTHER_SOURCE,
    OTHER_TOKEN,
    SOURCE,
    TWO_HOTELS_ENV,
    bearer,
    environ,
    event,
    harness,
    two_hotels_properties,
)


async def test_a_post_for_a_hotel_the_source_does_not_serve_sends_nothing_to_inlet(
    database_url: str, tmp_path: Path
) -> None:
    properties = two_hotels_properties(tmp_path)
    async with harness(database_url, PROPERTIES_FILE=str(properties), **TWO_HOTELS_ENV) as h:
        intruder = event("x1", source=OTHER_SOURCE, booking_id="X-1")  # oslo-1: not Bergen's
        response = await h.service.post("/v1/events", json=intruder, headers=bearer(OTHER_TOKEN))
        assert response.status == 403
        await h.settle()
        assert await h.inlet_requests() == []
        assert await h.grants() == []
        assert await h.rows("SELECT * FROM events") == []
        # The hotel's own source gets its grant: the refusal above is about the source alone.
        own = event("d1", booking_id="R-1")
        assert (await h.post(own)).status == 202
        await h.settle()
        assert [r["path"] for r in await h.inlet_requests()] == ["/GrantAccess"]


async def outbox_row(db: Database) -> None:
    """One access change and its webhook delivery, as the reconciler writes them."""
    payload = (
        '{"type": "access.granted", "timestamp": "2026-11-23T09:00:00+00:00", "data": {'
        '"source": "demo-pms", "booking_id": "R-1", "stay_id": "S1", "grant_key":'
        ' "demo-pms:R-1:S1", "property_id": "oslo-1", "state": "active"}}'
    )
    change = await db.pool.fetchval(
        "INSERT INTO access_changes (grant_key, source, booking_id, stay_id, property_id, kind,"
        " payload, created_at) VALUES ('demo-pms:R-1:S1', 'demo-pms', 'R-1', 'S1', 'oslo-1',"
        " 'access.granted', $1::jsonb, now()) RETURNING id",
        payload,
    )
    await db.pool.execute(
        "INSERT INTO deliveries (change_id, sink, grant_key, next_attempt_at, created_at)"
        " VALUES ($1, 'webhook:demo-pms', 'demo-pms:R-1:S1', now(), now())",
        change,
    )


async def test_webhook_ids_are_unique_across_two_databases(
    db: Database, pg_server: str, pg_template: str
) -> None:
    now = datetime.now(UTC) + timedelta(minutes=1)
    async with scratch_database(pg_server, pg_template) as other_url:
        other = await Database.connect(other_url, min_size=1, max_size=2)
        try:
            ids = []
            for database in (db, other):
                await outbox_row(database)
                (claimed,) = await DeliveryStore(database).claim(
                    owner="w", now=now, limit=5, lease_seconds=0
                )
                assert claimed.change_id == 1  # the same change id in both databases
                ids.append(claimed.webhook_id)
                # The id is stored: the next attempt of the delivery carries the same one.
                (again,) = await DeliveryStore(database).claim(
                    owner="w", now=now + timedelta(seconds=1), limit=5, lease_seconds=0
                )
                assert again.webhook_id == claimed.webhook_id
        finally:
            await other.close()
    assert ids[0] != ids[1]
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    assert webhook_message_id(claimed) == f"msg_{ids[1].hex}"


async def test_a_delivery_from_before_the_migration_gets_an_id_when_claimed(db: Database) -> None:
    await outbox_row(db)
    await db.pool.execute("UPDATE deliveries SET webhook_id = NULL")
    (claimed,) = await DeliveryStore(db).claim(
        owner="w", now=datetime.now(UTC) + timedelta(minutes=1), limit=5, lease_seconds=60
    )
    assert claimed.webhook_id.version == 7
    stored = await db.pool.fetchval("SELECT webhook_id FROM deliveries")
    assert stored == claimed.webhook_id


def run(
    args: list[str], env: dict[str, str], *, block_embedded: bool = False
) -> subprocess.CompletedProcess[str]:
    # Without the `embedded` extra, as in the production image: pgserver cannot be imported.
    prelude = "import sys; sys.modules['pgserver'] = None; " if block_embedded else ""
    code = prelude + "from inlet_bridge.__main__ import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import sys; " + code, *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_database_url_or_the_embedded_extra_serve_and_migrate_stop_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in environ(database_url).items() if k != "DATABASE_URL"}
    env["INLET_BRIDGE_DATA"] = str(tmp_path / "data")
    for command in ("serve", "migrate"):
        result = run([command], env, block_embedded=True)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "DATABASE_URL is not set" in lines[0]
        assert "[embedded]" in lines[0]
    assert not (tmp_path / "data").exists()
    # With DATABASE_URL the same process needs no extra.
    assert run(["migrate"], environ(database_url), block_embedded=True).returncode == 0


async def test_the_cli_writes_and_reads_the_audit_trail(database_url: str, db: Database) -> None:
    escalation = await db.pool.fetchval(
        "INSERT INTO escalations (grant_key, source, booking_id, property_id, operation, severity,"
        " reason, message, created_at) VALUES ('demo-pms:R-1:S1', 'demo-pms', 'R-1', 'oslo-1',"
        " 'grant', 'high', 'max_attempts', 'Inlet: ola@example.no refused', now()) RETURNING id"
    )
    env = environ(database_url)
    listed = run(["escalations", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "ola@example.no" not in listed.stdout
    assert "<masked:" in listed.stdout
    resolved = run(
        ["escalations", "resolve", str(escalation), "--note", "done", "--as", "kari"], env
    )
    assert resolved.returncode == 0, resolved.stderr
    trail = run(["audit", "--booking", f"{SOURCE}:R-1"], env)
    assert trail.returncode == 0, trail.stderr
    assert f"cli:kari (admin) resolve {SOURCE}/R-1 escalation #{escalation}: done" in trail.stdout
    assert "1 audit row(s)" in trail.stdout
    row = await db.pool.fetchrow("SELECT operator, action, escalation_id FROM audit_log")
    assert dict(row) == {"operator": "cli:kari", "action": "resolve", "escalation_id": escalation}
