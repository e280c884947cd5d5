"""What does a fault scenario run on, and how is each part broken? The world of `bench/faults.py`.

- `Postgres`: the server. Without DATABASE_URL, pgserver's own server in a temporary folder,
  which can be stopped (`pg_ctl stop -m immediate`: a crash, recovery on start) and started
  again on the same socket under load. With DATABASE_URL the server is not ours to stop.
  Each scenario gets a fresh database, migrated with `Database.migrate()`.
- `InletGate`: a TCP relay between the replicas and the Inlet sandbox. `refuse()` closes its
  listening socket (new connections are refused) and cuts the open ones; `admit()` listens
  again on the same port. The sandbox process keeps running, so Inlet's memory of its grants
  survives the outage, as Inlet's would.
- `World`: one scenario's processes, started as the project's end-to-end tests start them
  (tests/integration/process_support.py): the sandbox (`inlet-bridge sandbox`, with either
  reading of a GrantAccess that repeats a revoked grant's externalId) and one or two
  `inlet-bridge serve` replicas, each its own process with its log files in the folder. A
  replica can be killed (SIGKILL) and started again on the same port, as an orchestrator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from inlet_bridge.store.db import Database
from tests.integration.process_support import (
    Process,
    free_port,
    running,
    sandbox_process,
    serve_process,
    write_properties,
)


def _with_database(dsn: str, name: str) -> str:
    """The same server, another database (works for host/port and for socket DSNs)."""
    base, sep, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{sep}{query}"


class Postgres:
    """The PostgreSQL server of the campaign: DATABASE_URL, or pgserver's, which we control."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._folder: Path | None = None
        self._server: Any = None
        self._socket_dir: Path | None = None

    @property
    def controllable(self) -> bool:
        return self._server is not None

    async def start(self) -> str:
        if self._url:
            return self._url
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, as in most containers
            warnings.simplefilter("ignore")
            import pgserver  # only the embedded mode needs it

        self._folder = Path(tempfile.mkdtemp(prefix="inlet-faults-pg-"))
        # cleanup_mode None: the server is restarted under pgserver's feet, so we stop it.
        self._server = await asyncio.to_thread(
            pgserver.get_server,  # type: ignore[attr-defined]
            self._folder / "pgdata",
            cleanup_mode=None,
        )
        self._socket_dir = self._server.get_postmaster_info().socket_dir
        self._url = str(self._server.get_uri())
        return self._url

    async def stop_server(self) -> None:
        """Stop the server at once, as a crash would (the next start recovers from the WAL)."""
        await self._pg_ctl("-w", "-m", "immediate", "stop")

    async def start_server(self) -> None:
        """Start the stopped server again, on the same socket."""
        await self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self._socket_dir}",
            "-l",
            str(self._server.log),
            "start",
        )

    async def close(self) -> None:
        if self._server is None:
            return
        with contextlib.suppress(Exception):
            await self._pg_ctl("-w", "-m", "fast", "stop")
        assert self._folder is not None
        shutil.rmtree(self._folder, ignore_errors=True)
        self._server = None

    async def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        assert self._server is not None, "the server is not ours to stop (DATABASE_URL)"
        await asyncio.to_thread(
            pg_ctl,
            list(args),
            pgdata=self._server.pgdata,
            user=self._server.system_user,
            timeout=60,
        )

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A fresh, migrated database for one scenario; dropped after."""
        assert self._url is not None
        name = f"faults_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self._url)
        try:
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        url = _with_database(self._url, name)
        db = await Database.connect(url, min_size=1, max_size=1)
        try:
            await db.migrate()
        finally:
            await db.close()
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                admin = await asyncpg.connect(self._url)
                try:
                    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                finally:
                    await admin.close()


class InletGate:
    """A TCP relay in front of the sandbox that can refuse connections and let them in again."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self._upstream = upstream_port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.relayed = 0
        self.refused_since: float | None = None

    async def admit(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )
        self.refused_since = None

    async def refuse(self) -> None:
        """Stop listening and cut every open connection (the client sees a reset)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        self.refused_since = asyncio.get_running_loop().time()

    async def close(self) -> None:
        await self.refuse()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self.relayed += 1
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


@dataclass(frozen=True)
class Tuning:
    """Settings that make faults visible within a run of minutes rather than hours."""

    inlet_timeout_seconds: float = 3.0  # [inlet] timeout_seconds: a longer wait is a lost answer
    retry_interval_minutes: float = 0.05  # [retry] interval_minutes: a retry every 3 s
    call_lease_seconds: float = 10.0  # LEASE_SECONDS: a killed replica's calls come back
    reconcile_lease_seconds: float = 10.0  # RECONCILE_LEASE_SECONDS, once it is a setting
    shutdown_seconds: float = 5.0
    call_concurrency: int = 8  # CALL_CONCURRENCY


def properties_for(folder: Path, inlet_port: int, tuning: Tuning) -> Path:
    """The demo hotel pointed at the gate, with the client timeout and retry interval tuned."""
    path = write_properties(folder, inlet_port)
    text = path.read_text(encoding="utf-8")
    for key, value in (
        ("timeout_seconds", tuning.inlet_timeout_seconds),
        ("interval_minutes", tuning.retry_interval_minutes),
    ):
        text, count = re.subn(
            rf"^{key} = .*$", f"{key} = {value:g}", text, count=1, flags=re.MULTILINE
        )
        assert count == 1, f"the demo properties file has no {key} line"
    path.write_text(text, encoding="utf-8")
    return path


class World:
    """One scenario's processes: the sandbox behind the gate, and the replicas."""

    def __init__(
        self,
        stack: AsyncExitStack,
        http: aiohttp.ClientSession,
        folder: Path,
        database_url: str,
        tuning: Tuning,
        after_revoke: str = "new",
    ) -> None:
        self._stack = stack
        self.http = http
        self.folder = folder
        self.database_url = database_url
        self.tuning = tuning
        self.after_revoke = after_revoke  # the sandbox's reading of a repeated externalId
        self.sandbox: Process | None = None
        self.gate: InletGate | None = None
        self.properties: Path | None = None
        self.replicas: list[Process] = []
        self.processes: list[Process] = []

    async def start(self, replicas: int) -> None:
        sandbox = sandbox_process(self.folder)
        sandbox.args += ["--after-revoke", self.after_revoke]
        self.sandbox = await self._run(sandbox, "/_sandbox/grants")
        self.gate = InletGate(self.sandbox.port)
        await self.gate.admit()
        self._stack.push_async_callback(self.gate.close)
        self.properties = properties_for(self.folder, self.gate.port, self.tuning)
        for i in range(replicas):
            name = f"replica-{'abcdefgh'[i]}"
            self.replicas.append(await self._run(self._serve(name), "/readyz"))

    def _serve(self, name: str) -> Process:
        assert self.properties is not None
        t = self.tuning
        return serve_process(
            self.folder,
            self.database_url,
            instance_id=name,
            properties=self.properties,
            SHUTDOWN_TIMEOUT_SECONDS=f"{t.shutdown_seconds:g}",
            LEASE_SECONDS=f"{t.call_lease_seconds:g}",
            RECONCILE_LEASE_SECONDS=f"{t.reconcile_lease_seconds:g}",
            CALL_CONCURRENCY=str(t.call_concurrency),
        )

    async def _run(self, process: Process, ready_path: str) -> Process:
        await self._stack.enter_async_context(running(process))
        self.processes.append(process)
        await process.wait_ready(self.http, ready_path)
        return process

    def alive(self) -> list[Process]:
        return [p for p in self.replicas if p.returncode is None]

    async def kill(self, replica: Process) -> None:
        replica.signal(signal.SIGKILL)
        await replica.wait_exit(10)

    async def restart(self, replica: Process) -> Process:
        """The killed replica started again on its port, as its pod would be."""
        generation = sum(p.port == replica.port for p in self.processes) + 1
        again = Process(
            f"{replica.name}-{generation}", replica.args, replica.env, self.folder, replica.port
        )
        await self._run(again, "/readyz")
        self.replicas[self.replicas.index(replica)] = again  # the PMS posts to it from now
        return again

    # -- the sandbox's test endpoints ------------------------------------------------------

    async def sandbox_get(self, path: str) -> Any:
        assert self.sandbox is not None
        async with self.http.get(self.sandbox.url + path) as response:
            response.raise_for_status()
            return await response.json()

    async def arm_fault(self, **fault: Any) -> None:
        assert self.sandbox is not None
        async with self.http.post(self.sandbox.url + "/_sandbox/faults", json=fault) as response:
            response.raise_for_status()

    async def clear_faults(self) -> None:
        assert self.sandbox is not None
        async with self.http.delete(self.sandbox.url + "/_sandbox/faults") as response:
            response.raise_for_status()

    async def in_flight_at_inlet(self) -> int:
        """Requests the sandbox has received and not answered yet."""
        requests = await self.sandbox_get("/_sandbox/requests")
        return sum(r["status"] is None for r in requests)
