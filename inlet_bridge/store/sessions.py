"""Who is signed in to the console? Sessions in PostgreSQL, shared by every replica.

The browser holds a random session id in an HttpOnly cookie; the table holds only its
SHA-256, the operator's name and the digest of the token they signed in with. A session ends
when it is signed out, after `IDLE_SECONDS` without use, `LIFETIME_SECONDS` after sign-in, or
when the operator's token changes (the digest no longer matches a configured credential).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import msgspec

from inlet_bridge.store.db import Database

# A shift: an operator signs in again at most twice a day.
LIFETIME_SECONDS = 12 * 3600
# A console left alone for two hours is signed out.
IDLE_SECONDS = 2 * 3600


class StoredSession(msgspec.Struct, frozen=True, kw_only=True):
    operator: str
    token_sha256: bytes
    created_at: datetime


def session_digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("ascii", errors="replace")).digest()


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, *, operator: str, token_sha256: bytes, now: datetime) -> str:
        """A new session's id (for the cookie); expired sessions are forgotten on the way."""
        await self._db.execute("purge_console_sessions", now, float(IDLE_SECONDS))
        session_id = secrets.token_urlsafe(32)
        await self._db.execute(
            "insert_console_session",
            id_sha256=session_digest(session_id),
            operator=operator,
            token_sha256=token_sha256,
            now=now,
            expires_at=now + timedelta(seconds=LIFETIME_SECONDS),
        )
        return session_id

    async def find(self, session_id: str, now: datetime) -> StoredSession | None:
        """The live session of this id (its use recorded), or None."""
        digest = session_digest(session_id)
        row = await self._db.fetchrow("console_session", digest, now, float(IDLE_SECONDS))
        if row is None:
            return None
        await self._db.execute("touch_console_session", digest, now)
        return StoredSession(
            operator=row["operator"],
            token_sha256=bytes(row["token_sha256"]),
            created_at=row["created_at"],
        )

    async def end(self, session_id: str) -> None:
        await self._db.execute("delete_console_session", session_digest(session_id))
