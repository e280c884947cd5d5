"""openapi.yaml against the running service, fuzzed by schemathesis: no 5xx, and every answer
(status, content type, headers, body) as the document says, with source and operator
credentials. Bounded: a fixed number of examples per operation, derandomized."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inlet_bridge.app import create_app
from inlet_bridge.serving import start_on_loopback

from ..conftest import scratch_database
from ..support import ADMIN, TOKEN, TWO_HOTELS_ENV, VIEWER, settings_for, two_hotels_properties

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SPEC_FILE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation (positive and negative cases): about half a minute on two cores.
EXAMPLES = 100


class ServiceThread:
    """The service on loopback, in a thread with its own event loop (schemathesis is blocking)."""

    def __init__(self, database_url: str, folder: Path) -> None:
        properties = two_hotels_properties(
            folder, demo_rate_limit="rate_limit = { per_second = 100000, burst = 100000 }"
        )
        self._settings = settings_for(
            database_url, PROPERTIES_FILE=str(properties), **TWO_HOTELS_ENV
        )
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner, self.url = self._loop.run_until_complete(
            start_on_loopback(create_app(self._settings, run_workers=False))
        )
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> ServiceThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the service did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture(scope="module")
def service_url(
    pg_server: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    database: Any = scratch_database(pg_server, pg_template)
    loop = asyncio.new_event_loop()
    url = loop.run_until_complete(database.__aenter__())
    try:
        with ServiceThread(url, tmp_path_factory.mktemp("schemathesis")) as service:
            yield service.url
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()


def credentials(path: str, method: str, seed: int) -> dict[str, str]:
    """A source's token for ingest and access reads; an operator's (admin, or now and then a
    viewer, whose refusals must be documented too) for everything else."""
    if path.startswith("/v1/events") or path.endswith("/access"):
        return {"Authorization": f"Bearer {TOKEN}"}
    token = VIEWER if seed % 4 == 0 and method != "GET" else ADMIN
    return {"Authorization": f"Bearer {token}"}


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_service_answers_as_openapi_yaml_says(case: Any, service_url: str) -> None:
    headers = dict(case.headers or {})
    # Generated credentials are noise; keep them only where a signature is being tried.
    if "webhook-signature" not in headers:
        headers.update(credentials(case.path, case.method, len(str(case.body))))
    case.headers = headers
    case.call_and_validate(base_url=service_url, checks=CHECKS)
