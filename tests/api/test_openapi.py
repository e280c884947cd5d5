"""openapi.yaml: a valid OpenAPI 3.1 document, route for route the service's, whose examples
fit their schemas and are accepted or refused by the running service exactly as documented."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import yaml
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from inlet_bridge.app import create_app
from inlet_bridge.keys import DATABASE

from ..support import ADMIN_HEADERS, BEARER, settings_for

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
URI = "urn:inlet-bridge:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(URI, DRAFT202012.create_resource(SPEC))
METHODS = {"get", "put", "post", "patch", "delete"}
INGEST = ("/v1/events", "/v1/events:batch")


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def resolve(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """The node a local `$ref` points at, and its JSON pointer in the document."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = SPEC
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def validator(schema_pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"{URI}#{schema_pointer}"}, registry=REGISTRY)


def schema_of(path: str, method: str, status: str) -> jsonschema.Draft202012Validator:
    base = f"/paths/{escape(path)}/{method}/responses/{status}"
    response, pointer = resolve(SPEC["paths"][path][method]["responses"][status], base)
    (media,) = response["content"]
    return validator(f"{pointer}/content/{escape(media)}/schema")


class Example(NamedTuple):
    path: str
    where: str  # "request" or a status code
    name: str
    schema: str  # JSON pointer of the media type's schema
    value: Any
    invalid: bool

    def __str__(self) -> str:
        return f"{self.path} {self.where} {self.name}"


def examples() -> list[Example]:
    found = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            base = f"/paths/{escape(path)}/{method}"
            parts = [(s, r, f"{base}/responses/{s}") for s, r in operation["responses"].items()]
            if "requestBody" in operation:
                parts.append(("request", operation["requestBody"], f"{base}/requestBody"))
            for where, node, pointer in parts:
                body, at = resolve(node, pointer)
                for media, content in body.get("content", {}).items():
                    for name, example in content.get("examples", {}).items():
                        example, _ = resolve(example, "")
                        schema = f"{at}/content/{escape(media)}/schema"
                        invalid = bool(example.get("x-invalid"))
                        found.append(Example(path, where, name, schema, example["value"], invalid))
    return found


EXAMPLES = examples()
REQUESTS = [e for e in EXAMPLES if e.where == "request" and e.path in INGEST]
VALID = [e for e in REQUESTS if not e.invalid]
INVALID = [e for e in REQUESTS if e.invalid]


def example(path: str, where: str, name: str) -> Any:
    (found,) = [e for e in EXAMPLES if (e.path, e.where, e.name) == (path, where, name)]
    return copy.deepcopy(found.value)


def test_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    validate(SPEC)
    broken = copy.deepcopy(SPEC)
    del broken["paths"]["/v1/bookings/{source}/{booking_id}"]["get"]["parameters"][0]
    with pytest.raises(OpenAPIValidationError, match="'source'"):
        validate(broken)


def test_every_route_is_documented_and_nothing_else(database_url: str) -> None:
    app = create_app(settings_for(database_url), run_workers=False)
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        # the operator console's HTML pages are not the API (docs/operations.md, Console)
        and not route.resource.canonical.startswith("/console/")
    }
    documented = {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }
    assert routes == documented


def test_the_document_has_the_examples_it_promises() -> None:
    names = {e.name for e in VALID}
    assert {"private", "company", "agency", "group", "cancellation", "deletion", "batch"} <= names
    assert {e.path for e in INVALID} == set(INGEST)
    for e in VALID:
        events = e.value["events"] if e.path.endswith(":batch") else [e.value]
        assert {(x["source"], x["booking"]["property_id"]) for x in events} == {
            ("demo-pms", "oslo-1")
        }


@pytest.mark.parametrize("case", [e for e in EXAMPLES if not e.invalid], ids=str)
def test_example_fits_its_schema(case: Example) -> None:
    validator(case.schema).validate(case.value)


def expects_warnings(case: Example) -> bool:
    """Whether a valid request example is documented as losing a contact detail (x-warnings)."""
    content = SPEC["paths"][case.path]["post"]["requestBody"]["content"]["application/json"]
    return bool(content["examples"][case.name].get("x-warnings"))


@pytest.mark.parametrize("case", VALID, ids=str)
async def test_request_example_is_accepted(client: TestClient, case: Example) -> None:
    response = await client.post(case.path, json=case.value, headers=BEARER)
    body = await response.json()
    assert response.status == 202, body
    schema_of(case.path, "post", "202").validate(body)
    # An example's contact details are valid unless it says so; then it warns as documented.
    if expects_warnings(case):
        assert body["warnings"] == example(case.path, "202", case.name)["warnings"]
    else:
        answers = body["results"] if case.path.endswith(":batch") else [body]
        assert all("warnings" not in a for a in answers), body


@pytest.mark.parametrize("case", INVALID, ids=str)
async def test_invalid_example_is_refused_as_documented(client: TestClient, case: Example) -> None:
    documented = example(case.path, "422", case.name)
    response = await client.post(case.path, json=case.value, headers=BEARER)
    assert response.status == 422
    assert await response.json() == documented
    assert await client.app[DATABASE].pool.fetchval("SELECT count(*) FROM events") == 0


async def test_refusals_and_repeats_are_answered_as_documented(client: TestClient) -> None:
    event = example("/v1/events", "request", "private")

    def documented(status: str, name: str | None = None) -> Any:
        (value,) = [
            e.value
            for e in EXAMPLES
            if (e.path, e.where) == ("/v1/events", status) and name in (None, e.name)
        ]
        return value

    response = await client.post("/v1/events", json=event)
    assert (response.status, await response.json()) == (401, documented("401"))
    foreign = {**event, "source": "other-pms"}
    response = await client.post("/v1/events", json=foreign, headers=BEARER)
    assert (response.status, await response.json()) == (403, documented("403"))

    first = await client.post("/v1/events", json=event, headers=BEARER)
    again = await client.post("/v1/events", json=event, headers=BEARER)
    assert (first.status, again.status) == (202, 202)
    assert await again.json() == await first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"

    event["booking"]["stays"][0]["status"] = "checked_in"
    response = await client.post("/v1/events", json=event, headers=BEARER)
    assert (response.status, await response.json()) == (409, documented("409", "conflict"))

    huge = b'{"event_id": "' + b"x" * 30_000 + b'"}'
    response = await client.post("/v1/events", data=huge, headers=BEARER)
    assert response.status == 413
    assert (await response.json())["error"] == documented("413")["error"]

    unknown = {**event, "event_id": "evt-unknown", "booking": {**event["booking"]}}
    unknown["booking"]["property_id"] = "tromso-1"
    response = await client.post("/v1/events", json=unknown, headers=BEARER)
    assert (response.status, await response.json()) == (
        422,
        documented("422", "unknown-property"),
    )
    deep = b"[" * 9_000 + b"]" * 9_000  # within this client's MAX_BODY_BYTES
    response = await client.post("/v1/events", data=deep, headers=BEARER)
    assert (response.status, await response.json()) == (
        422,
        documented("422", "nested-too-deeply"),
    )


async def test_read_endpoints_answer_as_their_schemas_say(client: TestClient) -> None:
    group = example("/v1/events", "request", "group")
    assert (await client.post("/v1/events", json=group, headers=BEARER)).status == 202
    timeline = "/v1/bookings/demo-pms/G-2001"
    reads = [
        (timeline, "/v1/bookings/{source}/{booking_id}", ADMIN_HEADERS),
        (f"{timeline}?reveal=true", "/v1/bookings/{source}/{booking_id}", ADMIN_HEADERS),
        (f"{timeline}/access", "/v1/bookings/{source}/{booking_id}/access", BEARER),
        ("/v1/escalations?state=all", "/v1/escalations", ADMIN_HEADERS),
        ("/healthz", "/healthz", {}),
        ("/readyz", "/readyz", {}),
    ]
    for url, path, headers in reads:
        response = await client.get(url, headers=headers)
        assert response.status == 200, url
        schema_of(path, "get", "200").validate(await response.json())
    masked = await (await client.get(timeline, headers=ADMIN_HEADERS)).json()
    assert masked["events"][0]["event"]["booking"]["organizer"]["name"].startswith("<masked:")
    dry_run = example("/v1/resync", "request", "dry-run")
    response = await client.post("/v1/resync", json=dry_run, headers=ADMIN_HEADERS)
    assert response.status == 200
    schema_of("/v1/resync", "post", "200").validate(await response.json())
    missing = await client.get("/v1/bookings/demo-pms/R-0000", headers=ADMIN_HEADERS)
    assert await missing.json() == example("/v1/bookings/{source}/{booking_id}", "404", "not-found")
    metrics = await client.get("/metrics")
    assert (metrics.status, metrics.content_type) == (200, "text/plain")


async def test_a_broken_example_would_be_caught(client: TestClient) -> None:
    event = example("/v1/events", "request", "private")
    event_schema = validator("/components/schemas/BookingEvent")
    for key in ("occurred_at", "event_id"):
        with pytest.raises(jsonschema.ValidationError):
            event_schema.validate({k: v for k, v in event.items() if k != key})
    stray = copy.deepcopy(event)
    stray["booking"]["stays"][0]["room"] = "101"
    with pytest.raises(jsonschema.ValidationError):
        event_schema.validate(stray)
    # A phone without a country code is dropped with a warning, which an example must not have.
    event["booking"]["stays"][0]["guests"][0]["phone"] = "912 34 567"
    response = await client.post("/v1/events", json=event, headers=BEARER)
    assert response.status == 202
    warnings = (await response.json())["warnings"]
    assert [w["path"] for w in warnings] == ["booking.stays[0].guests[0].phone"]
