"""Real processes for end-to-end tests: `inlet-bridge serve` replicas and the Inlet sandbox.

Each process gets a free port from the OS, writes its stdout (JSON log lines) and stderr to
files, is waited for with a bounded poll of a readiness URL, and is always stopped: the
`running` context manager sends SIGTERM and, if the process does not exit in time, SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.support import DEMO_PROPERTIES, environ

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.2
WAIT_SECONDS = 30.0
STOP_SECONDS = 15.0
# Inherited from the test run; every setting of the service comes from `service_environ`.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "PYTHONPATH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_properties(folder: Path, inlet_port: int) -> Path:
    """The demo properties file with Inlet's `base_url` pointing at a local sandbox."""
    text = DEMO_PROPERTIES.read_text(encoding="utf-8")
    changed, count = re.subn(
        r'^base_url = ".*"$',
        f'base_url = "http://127.0.0.1:{inlet_port}"',
        text,
        count=1,
        flags=re.MULTILINE,
    )
    assert count == 1, "the demo properties file has no [inlet] base_url line"
    path = folder / "properties.toml"
    path.write_text(changed, encoding="utf-8")
    return path


def service_environ(
    database_url: str, *, port: int, instance_id: str, properties: Path, **extra: str
) -> dict[str, str]:
    """The environment of one `serve` replica (nothing else leaks in from the test run)."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(
        environ(
            database_url,
            PROPERTIES_FILE=str(properties),
            HOST="127.0.0.1",
            PORT=str(port),
            INSTANCE_ID=instance_id,
            LOG_LEVEL="INFO",
            MIGRATE_ON_START="false",
            PYTHONUNBUFFERED="1",
        )
    )
    env.update(extra)
    return env


async def wait_until(
    check: Callable[[], Awaitable[T]],
    what: str,
    *,
    timeout: float = WAIT_SECONDS,
    interval: float = POLL_SECONDS,
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}")
        await asyncio.sleep(interval)


class Process:
    """One child process with its output in files under a folder."""

    def __init__(
        self, name: str, args: list[str], env: Mapping[str, str], folder: Path, port: int
    ) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = folder / f"{name}.stdout.log"
        self.stderr_path = folder / f"{name}.stderr.log"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def proc(self) -> asyncio.subprocess.Process:
        assert self._proc is not None, f"{self.name} was not started"
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def start(self) -> None:
        stdout, stderr = _open_outputs(self.stdout_path, self.stderr_path)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.args,
                env=self.env,
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        finally:  # the child holds its own copies
            stdout.close()
            stderr.close()

    async def wait_ready(
        self, session: aiohttp.ClientSession, path: str, timeout: float = WAIT_SECONDS
    ) -> None:
        """Poll `path` until it answers 200; fail at once if the process exits."""

        async def ready() -> bool:
            if self.proc.returncode is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                    + self.output()
                )
            try:
                async with session.get(
                    self.url + path, timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        await wait_until(ready, f"{self.name} {path}", timeout=timeout)

    def signal(self, signum: int) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if the process is still running after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            return None

    async def stop(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; the exit code."""
        if self._proc is None:
            return 0
        self.signal(signal.SIGTERM)
        code = await self.wait_exit(timeout)
        if code is None:
            self.proc.kill()
            code = await self.proc.wait()
        return code

    def stdout_lines(self) -> list[str]:
        return _read(self.stdout_path).splitlines()

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines of stdout (every line must be one JSON object)."""
        records = []
        for number, line in enumerate(self.stdout_lines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AssertionError(f"{self.name} line {number} is not JSON: {line!r}") from exc
            assert isinstance(record, dict), f"{self.name} line {number}: {line!r}"
            records.append(record)
        return records

    def output(self, tail: int = 40) -> str:
        """The end of stdout and stderr, for failure messages."""
        out = "\n".join(self.stdout_lines()[-tail:])
        err = "\n".join(_read(self.stderr_path).splitlines()[-tail:])
        return f"--- {self.name} stdout ---\n{out}\n--- {self.name} stderr ---\n{err}"


@asynccontextmanager
async def running(process: Process) -> AsyncIterator[Process]:
    """Start `process`; on the way out stop it (SIGTERM, then SIGKILL) whatever happened."""
    try:
        await process.start()
        yield process
    finally:
        await process.stop()


def sandbox_process(folder: Path) -> Process:
    port = free_port()
    args = [sys.executable, "-m", "inlet_bridge", "sandbox", "--port", str(port)]
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    return Process("sandbox", args, env, folder, port)


def serve_process(
    folder: Path,
    database_url: str,
    *,
    instance_id: str,
    properties: Path,
    **extra: str,
) -> Process:
    port = free_port()
    env = service_environ(
        database_url, port=port, instance_id=instance_id, properties=properties, **extra
    )
    args = [sys.executable, "-m", "inlet_bridge", "serve"]
    return Process(instance_id, args, env, folder, port)


def _open_outputs(stdout: Path, stderr: Path) -> tuple[Any, Any]:
    return stdout.open("wb"), stderr.open("wb")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
