"""Our signatures against the Standard Webhooks specification's published test vector (the
standard-webhooks repository's library tests) and against the `standardwebhooks` library."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import standardwebhooks

from inlet_bridge import pms_client, signing

# The vector: libraries/python/tests/test_webhooks.py (test_sign_function) of
# github.com/standard-webhooks/standard-webhooks, the same in its other libraries' tests.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
WRONG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="  # the vector's invalid signature


def test_the_service_and_the_kit_sign_the_published_vector() -> None:
    assert signing.sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == SIGNATURE
    assert pms_client.signature(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == SIGNATURE
    headers = pms_client.sign(SECRET, PAYLOAD, source=None, msg_id=MSG_ID, timestamp=TIMESTAMP)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    library = standardwebhooks.Webhook(SECRET)
    assert library.sign(MSG_ID, datetime.fromtimestamp(TIMESTAMP, UTC), PAYLOAD) == SIGNATURE


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (SIGNATURE, True),
        (WRONG, False),
        (f"v1,bm90LWl0 {SIGNATURE}", True),  # several signatures: one matching is enough
        ("v2," + SIGNATURE[3:], False),  # another version is not ours
        ("", False),
    ],
)
def test_the_service_verifies_the_published_vector(header: str, accepted: bool) -> None:
    at = datetime.fromtimestamp(TIMESTAMP + 10, UTC)
    verdict = signing.verify(
        [SECRET],
        msg_id=MSG_ID,
        timestamp=str(TIMESTAMP),
        signature_header=header,
        body=PAYLOAD,
        now=at,
    )
    assert verdict is accepted


def test_the_kit_refuses_the_vectors_wrong_signature_and_a_stale_timestamp() -> None:
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}
    with pytest.raises(pms_client.InvalidSignature, match="no signature"):
        pms_client.verify_webhook(
            SECRET, {**headers, "webhook-signature": WRONG}, PAYLOAD, now=TIMESTAMP
        )
    with pytest.raises(pms_client.InvalidSignature, match="too old"):
        pms_client.verify_webhook(
            SECRET, {**headers, "webhook-signature": SIGNATURE}, PAYLOAD, now=TIMESTAMP + 301
        )
    # The right signature passes the check; the vector's body is no access change, so it is
    # refused after it, saying so.
    with pytest.raises(pms_client.InvalidSignature, match="not an access change"):
        pms_client.verify_webhook(
            SECRET, {**headers, "webhook-signature": SIGNATURE}, PAYLOAD, now=TIMESTAMP
        )


def test_signatures_made_by_each_side_are_verified_by_the_other() -> None:
    now = int(datetime.now(UTC).timestamp())
    body = b'{"event_id": "x"}'
    ours = pms_client.sign(SECRET, body, source="demo-pms", msg_id="msg_1", timestamp=now)
    library = standardwebhooks.Webhook(SECRET)
    assert library.verify(body, ours) == {"event_id": "x"}
    theirs = library.sign("msg_2", datetime.fromtimestamp(now, UTC), body)
    assert signing.verify(
        [SECRET],
        msg_id="msg_2",
        timestamp=str(now),
        signature_header=theirs,
        body=body,
        now=datetime.fromtimestamp(now, UTC),
    )
