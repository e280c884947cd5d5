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
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60
# What a well-formed header looks like; anything else is refused before any arithmetic (a
# 400-digit timestamp, non-ASCII signatures, ids of any length).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MSG_ID = re.compile(r"[\x21-\x7e]{1,128}")
_SIGNATURES = re.compile(r"[A-Za-z0-9+/=, ]{1,2048}")
MAX_SIGNATURES = 8


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
    return "v1," + base64.b64encode(_digest(secret_key(secret), msg_id, timestamp, body)).decode()


def read_content(method: str, path: str) -> bytes:
    """What a request without a body signs in place of one (our extension for reads):
    `{METHOD} {path}`, the path with its query string as sent, e.g.
    `GET /v1/bookings/demo-pms/R-1001/access`. A captured signature then reads nothing else."""
    return f"{method.upper()} {path}".encode()


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def fresh_timestamp(timestamp: str, now: datetime) -> int | None:
    """The timestamp as a number when it is well-formed and within the tolerance, else None."""
    if not _TIMESTAMP.fullmatch(timestamp):
        return None
    sent_at = int(timestamp)
    if abs(now.timestamp() - sent_at) > TOLERANCE_SECONDS:
        return None
    return sent_at


def well_formed_id(msg_id: str) -> bool:
    """1 to 128 printable ASCII characters, no spaces."""
    return _MSG_ID.fullmatch(msg_id) is not None


def verify_keys(
    keys: Sequence[bytes],
    *,
    msg_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    now: datetime,
) -> bool:
    """`verify` with the secrets' keys decoded beforehand (the service does it once)."""
    sent_at = fresh_timestamp(timestamp, now)
    if sent_at is None or not keys or not well_formed_id(msg_id):
        return False
    if not _SIGNATURES.fullmatch(signature_header):
        return False
    offered = [
        part[3:].encode("ascii")
        for part in signature_header.split()[:MAX_SIGNATURES]
        if part.startswith("v1,")
    ]
    if not offered:
        return False
    for key in keys:
        expected = base64.b64encode(_digest(key, msg_id, sent_at, body))
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False


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
    return verify_keys(
        [secret_key(s) for s in secrets],
        msg_id=msg_id,
        timestamp=timestamp,
        signature_header=signature_header,
        body=body,
        now=now,
    )
