"""How is personal data kept out of what we show? One masking, the same on every endpoint.

Codes, links and contact details become `<masked:…>` tags (keyed with `LOG_MASK_KEY`, so a tag
in a support ticket matches the same value's tag in the logs); Inlet's free-text messages are
scrubbed of emails and phone numbers wherever they are shown (timeline, escalations, the
access API, the CLI), since Inlet may echo what it was sent.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from inlet_bridge.keys import SETTINGS
from inlet_bridge.logs import Masker

FREE_TEXT_KEYS = frozenset({"message", "last_message"})
PERSONAL_KEYS = frozenset(
    {"name", "email", "phone", "guest_name", "code", "code_formatted", "link"}
)
# An event's contact warnings hold JSON paths and our own messages, never the dropped values;
# scrubbing them would only mask the example number in "e.g. +4791234567".
_WITHOUT_PERSONAL_KEYS = frozenset({"warnings"})
# What a path segment or a query value may hold before it reaches the database: an id.
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@/+#-]{0,127}")


def masker(request: web.Request) -> Masker:
    return Masker(request.app[SETTINGS].log_mask_key)


def scrub(masker: Masker, text: str | None) -> str | None:
    """Inlet's message with emails and phone numbers masked."""
    return None if text is None else masker.scrub(text)


def mask_personal(node: Any, masker: Masker) -> None:
    """Mask personal values in place, at any depth; scrub free-text messages."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _WITHOUT_PERSONAL_KEYS:
                continue
            if key in PERSONAL_KEYS and isinstance(value, str):
                node[key] = masker.mask(value)
            elif key in FREE_TEXT_KEYS and isinstance(value, str):
                node[key] = masker.scrub(value)
            else:
                mask_personal(value, masker)
    elif isinstance(node, list | tuple):
        for item in node:
            mask_personal(item, masker)


def scrub_messages(node: Any, masker: Masker) -> None:
    """Scrub only the free-text messages, in place, at any depth (codes are left as they are)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FREE_TEXT_KEYS and isinstance(value, str):
                node[key] = masker.scrub(value)
            else:
                scrub_messages(value, masker)
    elif isinstance(node, list | tuple):
        for item in node:
            scrub_messages(item, masker)


def is_id(value: str) -> bool:
    return ID.fullmatch(value) is not None
