"""docs/integrating.md stays true: each block it marks `<!-- run: NAME -->` is run against the
running service (curl and openssl in bash, Python, Node.js), and its receivers get the signed
access webhooks the service sends."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from ..support import DEMO_PROPERTIES, SIGNING_SECRET, Harness, harness

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "integrating.md"
BLOCK = re.compile(r"<!-- run: ([a-z-]+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
KIT_SECRET = "whsec_" + "a2l0LXNpZ25pbmctc2VjcmV0LWZvci10ZXN0cw=="
DEMO_OUTBOUND = "whsec_" + "ZGVtby1vdXRib3VuZC1zZWNyZXQtZm9yLWRvY3M="
KIT_OUTBOUND = "whsec_" + "a2l0LW91dGJvdW5kLXNlY3JldC1mb3ItZG9jcw=="
RUNNERS = {"sh": ["bash"], "python": [sys.executable], "js": ["node"]}
SUFFIX = {"sh": ".sh", "python": ".py", "js": ".mjs"}


def blocks() -> dict[str, tuple[str, str]]:
    return {name: (lang, code) for name, lang, code in BLOCK.findall(DOC.read_text())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Doc:
    def __init__(self, h: Harness, folder: Path, ports: dict[str, int]) -> None:
        self.h = h
        self.folder = folder
        self.ports = ports

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "WEBHOOK_"))}
        env.update(
            BRIDGE_URL=self.h.service.base_url,
            BRIDGE_SOURCE="demo-pms",
            SIGNING_SECRET=SIGNING_SECRET,
            PYTHONPATH=str(ROOT),
        )
        env.update(extra)
        return env

    async def start(self, name: str, **extra: str) -> asyncio.subprocess.Process:
        lang, code = blocks()[name]
        script = self.folder / f"{name}{SUFFIX[lang]}"
        script.write_text(code + "\n")
        return await asyncio.create_subprocess_exec(
            *RUNNERS[lang],
            str(script),
            cwd=ROOT,
            env=self.env(**extra),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, name: str, **extra: str) -> str:
        process = await self.start(name, **extra)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, f"{name}: {out.decode()}{err.decode()}"
        return out.decode()

    async def listening(self, name: str, **extra: str) -> asyncio.subprocess.Process:
        process = await self.start(name, **extra)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line.decode().strip() == "listening", line
        return process

    async def settled_until_exit(self, process: asyncio.subprocess.Process) -> str:
        """Let the service deliver its webhooks until the receiver has had one and exited."""
        for _ in range(100):
            await self.h.settle()
            if process.returncode is not None:
                break
            try:
                await asyncio.wait_for(process.wait(), 0.2)
            except TimeoutError:
                continue
        out, err = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, out.decode() + err.decode()
        return out.decode()


@pytest.fixture
async def doc(database_url: str, tmp_path: Path) -> AsyncIterator[Doc]:
    ports = {"python": free_port(), "node": free_port()}
    text = DEMO_PROPERTIES.read_text().replace(
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]',
        'signing_secrets = [{ env = "DEMO_PMS_WEBHOOK_SECRET" }]\n'
        f'webhook_url = "http://127.0.0.1:{ports["python"]}/hooks/inlet-bridge"\n'
        'webhook_secret = { env = "DEMO_OUTBOUND" }\n',
    )
    text += (
        '\n[sources.kit-pms]\nproperties = ["oslo-1"]\n'
        'signing_secrets = [{ env = "KIT_SIGNING" }]\n'
        f'webhook_url = "http://127.0.0.1:{ports["node"]}/hooks"\n'
        'webhook_secret = { env = "KIT_OUTBOUND" }\n'
    )
    properties = tmp_path / "properties.toml"
    properties.write_text(text)
    async with harness(
        database_url,
        start=datetime.now(UTC),
        PROPERTIES_FILE=str(properties),
        DEMO_OUTBOUND=DEMO_OUTBOUND,
        KIT_SIGNING=KIT_SECRET,
        KIT_OUTBOUND=KIT_OUTBOUND,
    ) as h:
        yield Doc(h, tmp_path, ports)


def test_the_doc_marks_every_example_it_promises() -> None:
    assert sorted(blocks()) == sorted(
        [
            "curl-event",
            "curl-read",
            "python-event",
            "node-event",
            "python-receiver",
            "node-receiver",
        ]
    )


async def test_every_command_of_the_doc_works_against_the_running_service(doc: Doc) -> None:
    receiver = await doc.listening(
        "python-receiver", PORT=str(doc.ports["python"]), WEBHOOK_SECRET=DEMO_OUTBOUND
    )
    posted = await doc.run("curl-event")
    assert "HTTP 202" in posted, posted
    assert '"position":' in posted
    heard = await doc.settled_until_exit(receiver)
    assert re.search(r"access\.granted CURL-1 code #\d+\*", heard), heard

    read = await doc.run("curl-read")
    assert "HTTP 200" in read, read
    assert '"state":"active"' in read

    printed = await doc.run("python-event")
    assert re.search(r"stored py-\d+ at position \d+", printed), printed
    assert "repeat answered like the first: True True" in printed
    assert "batch stored 1 event(s)" in printed
    assert re.search(r"stay PY-1-1 is (pending|granting|active)", printed), printed

    node_receiver = await doc.listening(
        "node-receiver", PORT=str(doc.ports["node"]), WEBHOOK_SECRET=KIT_OUTBOUND
    )
    sent = await doc.run("node-event", BRIDGE_SOURCE="kit-pms", SIGNING_SECRET=KIT_SECRET)
    assert sent.startswith("HTTP 202"), sent
    heard = await doc.settled_until_exit(node_receiver)
    assert re.search(r"access\.granted JS-1 code #\d+\*", heard), heard


async def test_a_receiver_of_the_doc_refuses_a_bad_signature(doc: Doc) -> None:
    receiver = await doc.listening(
        "node-receiver", PORT=str(doc.ports["node"]), WEBHOOK_SECRET=KIT_OUTBOUND
    )
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{doc.ports['node']}/hooks",
                data=b"{}",
                headers={
                    "webhook-id": "msg_x",
                    "webhook-timestamp": "1",
                    "webhook-signature": "v1,x",
                },
            ) as response,
        ):
            assert response.status == 401
    finally:
        receiver.kill()
        await receiver.wait()
