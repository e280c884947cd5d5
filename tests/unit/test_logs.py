"""Are personal values in logs tagged so that equal values match but none can be recovered?"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime

import pytest

from inlet_bridge import logs
from inlet_bridge.domain.secret import Secret
from inlet_bridge.logs import JsonFormatter, Masker

KEY = Secret("key-of-replica-set-one-0123456789abcdef")
OTHER_KEY = Secret("key-of-replica-set-two-0123456789abcdef")
TAG = re.compile(r"<masked:[0-9a-f]{10}>")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("4711", id="door-code"),
        pytest.param("123456", id="six-digit-code"),
        pytest.param("+4791234567", id="phone"),
        pytest.param("ola@example.no", id="email"),
        pytest.param("Ola Nordmann", id="name"),
        pytest.param(91234567, id="number"),
    ],
)
def test_a_tag_is_stable_under_one_key_and_differs_under_another(value: object) -> None:
    tag = Masker(KEY).mask(value)

    assert TAG.fullmatch(tag), tag
    assert Masker(KEY).mask(value) == tag  # another process with the same key agrees
    assert Masker(OTHER_KEY).mask(value) != tag
    assert str(value) not in tag


def test_different_values_give_different_tags() -> None:
    masker = Masker(KEY)

    assert len({masker.mask(f"{code:04d}") for code in range(10_000)}) == 10_000


def test_a_door_code_cannot_be_found_by_trying_every_code_without_the_key() -> None:
    """The unkeyed tag of old: sha256 of the value. Trying all 4-digit codes found it."""
    tag = Masker(KEY).mask("4711")

    unkeyed = {
        f"<masked:{hashlib.sha256(f'{code:04d}'.encode()).hexdigest()[:10]}>": f"{code:04d}"
        for code in range(10_000)
    }
    assert tag not in unkeyed
    # with the key, the same search finds it: the key is what protects the codes
    keyed = {Masker(KEY).mask(f"{code:04d}"): f"{code:04d}" for code in range(10_000)}
    assert keyed[tag] == "4711"


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        pytest.param(
            "Cannot message ola@example.no", ["Cannot message "], ["ola@example.no"], id="email"
        ),
        pytest.param("call +47 912 34 567 now", ["call ", " now"], ["912 34 567"], id="phone"),
        pytest.param(
            "due 2026-11-25T11:00:00+01:00", ["2026-11-25T11:00:00+01:00"], [], id="timestamp"
        ),
    ],
)
def test_free_text_is_scrubbed_with_the_key(text: str, kept: list[str], hidden: list[str]) -> None:
    scrubbed = Masker(KEY).scrub(text)

    assert all(k in scrubbed for k in kept), scrubbed
    assert not any(h in scrubbed for h in hidden), scrubbed
    if hidden:
        assert TAG.search(scrubbed)
        assert Masker(OTHER_KEY).scrub(text) != scrubbed


def test_fields_are_masked_at_any_depth_and_keys_kept() -> None:
    cleaned = Masker(KEY).clean(
        "guest",
        {"name": "Ola Nordmann", "booking_id": "88000101", "contacts": [{"phone": "+4791234567"}]},
    )

    assert cleaned == {
        "name": Masker(KEY).mask("Ola Nordmann"),
        "booking_id": "88000101",
        "contacts": [{"phone": Masker(KEY).mask("+4791234567")}],
    }


def test_a_log_line_is_tagged_with_the_formatter_key() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "refused for %s",
            "args": ("ola@example.no",),
            "action": "ingest.refused",
            "booking_id": "88000101",
            "code": "4711",
        }
    )

    line = json.loads(JsonFormatter(Masker(KEY)).format(record))
    other = json.loads(JsonFormatter(Masker(OTHER_KEY)).format(record))

    assert line["action"] == "ingest.refused"
    assert line["booking_id"] == "88000101"
    assert line["code"] == Masker(KEY).mask("4711")
    assert line["msg"] == f"refused for {Masker(KEY).mask('ola@example.no')}"
    assert other["code"] != line["code"]
    assert "4711" not in json.dumps(line)
    assert "ola@example.no" not in json.dumps(line)


# The formatter keeps what repeats from line to line; what it writes is unchanged by that


@pytest.mark.parametrize(
    "created",
    [
        0.0,
        1_796_000_000.0,
        1_796_000_000.0004994,  # rounds down to .000499: millisecond 000
        1_796_000_000.2349996,  # rounds up to .235000 before the cut: millisecond 235
        1_796_000_000.9999996,  # rounds up into the next second
        1_796_000_001.5,
        1_796_003_599.999,
    ],
)
def test_the_timestamp_is_written_as_isoformat_writes_it(created: float) -> None:
    formatter = JsonFormatter(Masker(KEY))
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")

    for _ in range(2):  # the first time computes the second, the next reuses it
        record = logging.makeLogRecord({"msg": "tick", "created": created})
        assert json.loads(formatter.format(record))["ts"] == expected


def test_seconds_in_turn_never_reuse_another_seconds_text() -> None:
    formatter = JsonFormatter(Masker(KEY))
    for created in (1_796_000_000.5, 1_796_000_001.25, 1_796_000_000.75, 1_796_086_400.0):
        record = logging.makeLogRecord({"msg": "tick", "created": created})
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(record))["ts"] == expected


def test_a_kept_message_is_scrubbed_and_never_given_to_another_text() -> None:
    formatter = JsonFormatter(Masker(KEY))
    mask = Masker(KEY).mask

    def message(msg: str, *args: object) -> str:
        record = logging.makeLogRecord({"msg": msg, "args": args})
        return str(json.loads(formatter.format(record))["msg"])

    for _ in range(2):
        assert message("event stored") == "event stored"
        assert message("call ola@example.no") == f"call {mask('ola@example.no')}"
        assert message("call kari@example.no") == f"call {mask('kari@example.no')}"
        # with arguments the text differs from line to line: scrubbed every time
        assert (
            message("refused for %s", "ola@example.no") == f"refused for {mask('ola@example.no')}"
        )
        assert message("refused for %s", "+4791234567") == f"refused for {mask('+4791234567')}"


def test_the_kept_messages_are_bounded() -> None:
    formatter = JsonFormatter(Masker(KEY))
    for i in range(logs._MAX_MESSAGES + 10):
        record = logging.makeLogRecord({"msg": f"message {i} ola@example.no"})
        line = json.loads(formatter.format(record))
        assert line["msg"] == f"message {i} {Masker(KEY).mask('ola@example.no')}"
    assert len(formatter._messages) == logs._MAX_MESSAGES
