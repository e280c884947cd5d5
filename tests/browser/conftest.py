"""Fixtures of the browser tests: Debian's chromium driven by Playwright, and the stage.

No browser is downloaded: Playwright launches /usr/bin/chromium (the project's set-up installs
Debian's `chromium` package when it is missing, `scripts/install-browser.sh`). As root,
chromium needs --no-sandbox; the other flags keep it from reaching for the network, which this
machine does not have (and which a test has no business with).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from ..support import Harness, harness

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Pages are photographed on every run (and checked for width at phone size), into a scratch
# folder; `make screenshots` points this at docs/console/ to redraw the documented pictures, so
# a test run never changes a tracked file.
SCREENSHOTS = Path(
    os.environ.get("CONSOLE_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "inlet-bridge-console-screenshots"
)
FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A fixed key: the masked tags, and so the screenshots, are the same from run to run.
MASK_KEY = "console-screenshots-mask-key-0123456789abcdef"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (Debian's chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    flags = [*FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=flags
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def h(database_url: str) -> AsyncIterator[Harness]:
    async with harness(database_url, LOG_MASK_KEY=MASK_KEY) as running:
        yield running
