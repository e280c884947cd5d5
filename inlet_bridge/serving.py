"""How does a helper server (sandbox, emulator, demo PMS, certification stage) get on the air?"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)


async def serve_until_cancelled(app: web.Application, host: str, port: int, *, what: str) -> None:
    """Serve `app` on host:port until the task is cancelled (Ctrl-C in the CLI)."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info(
            f"{what} listening", extra={"action": "server.listening", "host": host, "port": port}
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def start_on_loopback(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start `app` on a free loopback port; the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://127.0.0.1:{port}"
