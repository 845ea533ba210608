"""Small helpers for transform authors: `from tarn.logsources.helpers import parse_ts, ...`.

Every helper is total on bad input in the way its name says: `*_or_none` and `to_*` return
None for values they cannot read; `parse_ts` and `syslog_ts` raise ValueError (a transform
that lets it escape has its record sidelined with that reason).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "as_dict",
    "dig",
    "digits_int_or_none",
    "int_cast_or_none",
    "ip_or_none",
    "iso_ts_or_none",
    "json_text",
    "json_text_nonempty",
    "now",
    "parse_ts",
    "reference_time",
    "split_domain",
    "strict_ip_or_none",
    "syslog_facility_name",
    "syslog_severity_name",
    "syslog_ts",
    "to_bool",
    "to_float",
    "to_int",
    "unique",
]

_NULLS = frozenset(("", "-", "null", "none", "nil", "n/a"))

_reference: ContextVar[datetime | None] = ContextVar("tarn_reference_time", default=None)


@contextmanager
def reference_time(when: datetime) -> Iterator[None]:
    """Within the block, "now" (used to infer years that syslog leaves out) is `when`.

    The golden runner uses it so that goldens do not change with the calendar.
    """
    token = _reference.set(when if when.tzinfo else when.replace(tzinfo=UTC))
    try:
        yield
    finally:
        _reference.reset(token)


def now() -> datetime:
    return _reference.get() or datetime.now(UTC)


def _from_epoch(value: float) -> datetime:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"not a time: {value!r}")
    magnitude = abs(value)
    if magnitude > 1e17:  # nanoseconds
        value /= 1e9
    elif magnitude > 1e14:  # microseconds
        value /= 1e6
    elif magnitude > 1e11:  # milliseconds
        value /= 1e3
    return datetime.fromtimestamp(value, UTC)


_EPOCH_TEXT = re.compile(r"-?\d+(\.\d+)?")


def parse_ts(value: Any) -> datetime:
    """A time in UTC from a datetime, epoch seconds/ms/us/ns (number or numeric text) or
    ISO 8601 / RFC 3339 text. Naive times are taken as UTC. Raises ValueError otherwise."""
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    elif isinstance(value, (int, float)):
        try:
            ts = _from_epoch(float(value))
        except (OverflowError, OSError) as exc:
            raise ValueError(f"not a time: {value!r} ({exc})") from exc
    elif isinstance(value, str):
        text = value.strip()
        if _EPOCH_TEXT.fullmatch(text):
            return parse_ts(float(text))
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value[:100]!r}") from None
    else:
        raise ValueError(f"ts must be a time, got {type(value).__name__}")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}  # fmt: skip
_BSD_TS = re.compile(
    r"(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})(?:\s+(?P<year>\d{4}))?\s+"
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"(?:\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
)


def syslog_ts(text: str, year_hint: int | None = None) -> datetime:
    """The time of a syslog header: RFC 3339 (RFC 5424 lines, rsyslog's high-precision
    format) or RFC 3164's `Mmm dd hh:mm:ss` (optionally with a year, fractions or a zone).

    RFC 3164 has no year: `year_hint` gives it; without one the year is the one that puts the
    time no more than a day after now (so December lines read in January land last year).
    Times without a zone are taken as UTC. Raises ValueError for anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"syslog timestamp must be text, got {type(text).__name__}")
    raw = text.strip()
    m = _BSD_TS.fullmatch(raw)
    if not m:
        if raw[:1].isdigit():
            return parse_ts(raw)
        raise ValueError(f"not a syslog timestamp: {text[:100]!r}")
    month = _MONTHS.get(m["mon"].lower())
    if month is None:
        raise ValueError(f"not a month: {m['mon']!r} in {text[:100]!r}")
    frac = (m["frac"] or "0")[:6].ljust(6, "0")
    tz = UTC
    if m["tz"] and m["tz"] not in ("Z", "UTC", "GMT"):
        sign = -1 if m["tz"][0] == "-" else 1
        digits = m["tz"][1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise ValueError(f"not a time zone offset: {m['tz']!r}")
        tz = timezone(sign * offset)

    def build(year: int) -> datetime:
        return datetime(
            year, month, int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]), int(frac), tz
        ).astimezone(UTC)

    if m["year"]:
        return build(int(m["year"]))
    if year_hint is not None:
        return build(year_hint)
    ref = now()
    for year in (ref.year, ref.year - 1, ref.year - 2, ref.year - 3, ref.year - 4):
        try:
            ts = build(year)
        except ValueError:  # Feb 29 outside a leap year: try an earlier year
            continue
        if ts <= ref + timedelta(days=1):
            return ts
    raise ValueError(f"not a valid date: {text[:100]!r}")


def ip_or_none(value: Any) -> str | None:
    """The IP address in canonical text, or None (host names, '-', garbage). Accepts a
    zone suffix (fe80::1%eth0) and IPv4-mapped IPv6, which it returns as IPv4."""
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]")
    if not text or len(text) > 64:
        return None
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def strict_ip_or_none(value: Any) -> str | None:
    """The IP address as `ipaddress` writes it, or None for anything but non-empty address text.

    Unlike `ip_or_none` it reads the text as it is: no trimming, no [brackets], a zone suffix
    is kept (fe80::1%eth0) and IPv4-mapped IPv6 stays IPv6."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def iso_ts_or_none(value: Any) -> datetime | None:
    """A time in UTC from ISO 8601 text (naive taken as UTC), None for anything else.

    Unlike `parse_ts` it never raises and reads neither epoch numbers nor padded text."""
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def int_cast_or_none(value: Any) -> int | None:
    """`int(value)`, or None for a bool or where int() raises TypeError/ValueError.

    Unlike `to_int` it truncates floats (2.5 -> 2), reads no hex and gives None for bools."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def digits_int_or_none(value: Any) -> int | None:
    """An int (not a bool) as it is, or text of digits only (no sign, no spaces); else None.

    Stricter than `to_int`: no floats, no hex, no padding."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a dict, else a new empty dict (for chaining `.get`)."""
    return value if isinstance(value, dict) else {}


def to_int(value: Any) -> int | None:
    """An integer from an int, an integral float or decimal/hex text; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NULLS:
            return None
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            f = to_float(text)
            return int(f) if f is not None and f.is_integer() else None
    return None


def to_float(value: Any) -> float | None:
    """A finite float from a number or numeric text; None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


_TRUE = frozenset(("true", "t", "yes", "y", "1", "on", "success", "enabled"))
_FALSE = frozenset(("false", "f", "no", "n", "0", "off", "failure", "disabled"))


def to_bool(value: Any) -> bool | None:
    """A boolean from a bool, 0/1 or common words (true/false, yes/no, on/off, T/F)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def unique(values: Iterable[Any] | None) -> list[str]:
    """Distinct non-empty values as text, in first-seen order; nested lists are flattened."""
    if values is None:
        return []
    seen: dict[str, None] = {}
    _add_unique(seen, values if isinstance(values, (list, tuple, set)) else [values])
    return list(seen)


def _add_unique(seen: dict[str, None], items: Iterable[Any]) -> None:
    for v in items:
        if type(v) is str:  # the common case first
            if v:
                seen[v] = None  # an existing key keeps its place
        elif v is None:
            continue
        elif isinstance(v, (list, tuple, set)):
            _add_unique(seen, v)
        elif v == "" or v == []:
            continue
        else:
            seen.setdefault(v if isinstance(v, str) else str(v), None)


def dig(record: Any, path: str, default: Any = None) -> Any:
    """`record["a"]["b"]["c"]` for path "a.b.c", or `default` where a step is missing."""
    node = record
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


JSON_ENCODER = msgspec.json.Encoder(order="sorted")


def json_text(value: Any) -> str | None:
    """Compact JSON text with sorted keys (stable across runs), None for None.

    UTF-8 as it is (no \\u escapes), times as RFC 3339, NaN and infinities as null. What the
    fast encoder cannot write (non-text keys, lone surrogates, other objects) is written by
    the standard library instead, with str() for unknown objects and \\u escapes."""
    if value is None:
        return None
    try:
        return JSON_ENCODER.encode(value).decode()
    except (TypeError, ValueError, UnicodeError, OverflowError):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


_JSON_IN_ORDER = msgspec.json.Encoder()


def json_text_nonempty(value: Any, *, sort_keys: bool) -> str | None:
    """Compact JSON text, None for None, {} and []. Unlike `json_text` it leaves key order
    to the caller and raises TypeError for values JSON cannot hold (times are RFC 3339 text).
    UTF-8 as it is, like `json_text`; what the fast encoder cannot write (non-text keys, lone
    surrogates) the standard library writes."""
    if value in (None, {}, []):
        return None
    try:
        return (JSON_ENCODER if sort_keys else _JSON_IN_ORDER).encode(value).decode()
    except (TypeError, ValueError, UnicodeError, OverflowError):
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)


_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
_SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")  # fmt: skip


def syslog_facility_name(code: int | None) -> str | None:
    return _FACILITIES[code] if isinstance(code, int) and 0 <= code < len(_FACILITIES) else None


def syslog_severity_name(code: int | None) -> str | None:
    return _SEVERITIES[code] if isinstance(code, int) and 0 <= code < len(_SEVERITIES) else None


# Common two-label public suffixes (co.uk, com.au, ...) for split_domain.
_MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk",
        "org.uk",
        "ac.uk",
        "gov.uk",
        "ltd.uk",
        "plc.uk",
        "me.uk",
        "com.au",
        "net.au",
        "org.au",
        "edu.au",
        "gov.au",
        "co.nz",
        "org.nz",
        "co.jp",
        "ne.jp",
        "or.jp",
        "ac.jp",
        "co.kr",
        "or.kr",
        "com.cn",
        "net.cn",
        "org.cn",
        "com.tw",
        "com.hk",
        "com.sg",
        "com.br",
        "net.br",
        "com.ar",
        "com.mx",
        "co.in",
        "net.in",
        "org.in",
        "co.za",
        "com.tr",
        "com.ua",
        "co.il",
        "com.my",
        "co.id",
    }
)


@lru_cache(maxsize=8192)
def split_domain(name: str) -> tuple[str | None, str | None, str | None]:
    """name -> (registered_domain, subdomain, top_level_domain), heuristically.

    Two-label public suffixes come from the short list above, not the full Public Suffix List.
    """
    labels = name.rstrip(".").lower().split(".")
    if len(labels) < 2 or labels[-1] == "arpa" or strict_ip_or_none(name):
        return None, None, None
    n = 3 if len(labels) >= 3 and ".".join(labels[-2:]) in _MULTI_LABEL_SUFFIXES else 2
    return (
        ".".join(labels[-n:]),
        ".".join(labels[:-n]) or None,
        ".".join(labels[-(n - 1) :]),
    )
