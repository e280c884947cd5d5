"""Is this request really from that source? Standard Webhooks signatures, both ways.

Signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the secret's key
(`whsec_` + base64), sent as `v1,<base64>`; several signatures may be space-separated, and a
source may have several secrets at once, which is how secrets are rotated without downtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret (a secret without the prefix is used as raw text)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one secret."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secrets: Iterable[str],
    *,
    msg_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    now: datetime,
) -> bool:
    """True when the timestamp is fresh and one signature matches one of the secrets."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent_at) > TOLERANCE_SECONDS:
        return False
    offered = [part.split(",", 1)[1] for part in signature_header.split() if part.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, msg_id, sent_at, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False
