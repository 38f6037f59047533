"""Dialfire's wire formats: ids, timestamps, md5 values, opaque cursors.

Kept apart from the world so the server and the oracle parse and print time the same way the
API does, without either of them knowing how the data is generated.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hashed_id(*parts: object) -> str:
    """A 16-character Dialfire-style id derived from `parts` (deterministic, well spread)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode("utf-8"), digest_size=16).digest()
    return "".join(ID_ALPHABET[b % 32] for b in digest)


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as the API prints them: `2021-09-02T15:34:39.960Z`."""
    m = _EPOCH + timedelta(milliseconds=ms)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
            f"{m.second:02d}.{ms % 1000:03d}Z")


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * DAY_MS) + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp_ms(text: str) -> int:
    """Parse the `from`/`to` forms clients send; no zone means UTC.

    Accepts a date (`2021-07-19`), the old client's form without `Z` and with up to three
    fractional digits (`2021-07-19T13:46:50.397`), and ISO-8601 with 0-9 fractional digits and
    `Z` or an offset. Raises ValueError otherwise.
    """
    match = _TIMESTAMP.match(text.strip())
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        tzinfo=UTC,
    )
    ms = to_ms(moment) + (int((fraction or "0").ljust(9, "0")[:3]))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


def encode_cursor(position: list[object]) -> str:
    """An opaque, URL-safe cursor for a position in an ordered listing."""
    raw = json.dumps(["dfsb1", *position], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> list[object]:
    """Inverse of encode_cursor; ValueError for anything this sandbox did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("invalid cursor") from error
    if not isinstance(value, list) or not value or value[0] != "dfsb1":
        raise ValueError("invalid cursor")
    return value[1:]
