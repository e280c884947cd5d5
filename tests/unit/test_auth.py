"""Finding the caller: one source's secrets tried, whatever the number of sources; operators'
roles; tokens that are not printable ASCII are no tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from inlet_bridge import signing
from inlet_bridge.api.auth import (
    CREDENTIALS,
    RATE_LIMITS,
    Credentials,
    RateLimits,
    admit_source,
    authenticate_operator,
)
from inlet_bridge.clock import ManualClock
from inlet_bridge.domain.secret import Secret
from inlet_bridge.keys import CLOCK
from inlet_bridge.properties import parse_properties
from tests.unit.domain_cases import ENVIRON, PROPERTY_ID, base_config

SOURCES = 200
NOW = 1_795_341_600


def config() -> Any:
    raw = base_config()
    environ = dict(ENVIRON)
    for i in range(SOURCES):
        raw["sources"][f"pms-{i}"] = {
            "properties": [PROPERTY_ID],
            "token": {"env": f"TOKEN_{i}"},
            "signing_secrets": [{"env": f"OLD_{i}"}, {"env": f"NEW_{i}"}],
        }
        environ[f"TOKEN_{i}"] = f"token-{i}"
        environ[f"OLD_{i}"] = f"old-secret-{i}"
        environ[f"NEW_{i}"] = f"new-secret-{i}"
    raw["operators"] = {
        "vera": {"token": {"env": "VIEWER"}, "role": "viewer"},
        "olav": {"token": {"env": "OPERATOR"}, "role": "operator", "properties": [PROPERTY_ID]},
    }
    environ |= {"VIEWER": "viewer-token", "OPERATOR": "operator-token"}
    return parse_properties(raw, environ)


@pytest.fixture
def app() -> web.Application:
    application = web.Application()
    application[CREDENTIALS] = Credentials(config(), Secret("admin-token"))
    application[RATE_LIMITS] = RateLimits()
    application[CLOCK] = ManualClock(datetime.fromtimestamp(NOW, UTC))
    return application


def request(app: web.Application, headers: dict[str, str], method: str = "POST") -> web.Request:
    return make_mocked_request(method, "/v1/events", headers=headers, app=app)


async def test_a_signed_request_tries_only_the_named_sources_secrets(
    app: web.Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"event_id": "e1"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": signing.sign("wrong-secret", "msg_1", NOW, body),
        "Inlet-Bridge-Source": "pms-150",
    }
    tried: list[bytes] = []
    digest = signing._digest

    def counting(key: bytes, *args: Any) -> bytes:
        tried.append(key)
        return digest(key, *args)

    monkeypatch.setattr(signing, "_digest", counting)
    refused = await admit_source(request(app, headers), body)
    assert isinstance(refused, web.Response)
    assert refused.status == 401
    assert tried == [signing.secret_key("old-secret-150"), signing.secret_key("new-secret-150")]


async def test_a_bearer_token_is_found_by_its_digest(app: web.Application) -> None:
    caller = await admit_source(request(app, {"Authorization": "Bearer token-199"}), b"")
    assert not isinstance(caller, web.Response)
    assert caller.source == "pms-199"
    assert caller.served == {PROPERTY_ID}
    for header in ("Bearer token-", "Bearer  ", "Basic token-1", "Bearer tøken-1", "Bearer a\tb"):
        refused = await admit_source(request(app, {"Authorization": header}), b"")
        assert isinstance(refused, web.Response), header
        assert refused.status == 401


def test_operators_have_their_roles_and_properties(app: web.Application) -> None:
    def who(token: str) -> Any:
        return authenticate_operator(request(app, {"Authorization": f"Bearer {token}"}, "GET"))

    viewer, operator, admin = who("viewer-token"), who("operator-token"), who("admin-token")
    assert (viewer.name, viewer.role, viewer.properties) == ("vera", "viewer", None)
    assert [viewer.may(p) for p in ("read", "reveal", "act", "audit")] == [
        True,
        False,
        False,
        False,
    ]
    assert [operator.may(p) for p in ("read", "reveal", "act", "audit")] == [
        True,
        True,
        True,
        False,
    ]
    assert operator.sees(PROPERTY_ID)
    assert not operator.sees("bergen-1")
    assert (admin.name, admin.role) == ("ADMIN_TOKEN", "admin")
    assert admin.may("audit")
    assert who("token-1") is None  # a source's token is not an operator's


def test_a_malformed_timestamp_or_signature_is_refused_without_arithmetic() -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    keys = [signing.secret_key("s")]
    good = signing.sign("s", "msg_1", NOW, b"x")
    for timestamp, signature, msg_id in [
        ("9" * 400, good, "msg_1"),
        ("-1", good, "msg_1"),
        (str(NOW), "v1,ÆØÅ", "msg_1"),
        (str(NOW), good + " " + "v1,x" * 2000, "msg_1"),
        (str(NOW), good, "m" * 129),
        (str(NOW), good, "msg 1"),
    ]:
        assert not signing.verify_keys(
            keys, msg_id=msg_id, timestamp=timestamp, signature_header=signature, body=b"x", now=now
        )
    assert signing.verify_keys(
        keys, msg_id="msg_1", timestamp=str(NOW), signature_header=good, body=b"x", now=now
    )
