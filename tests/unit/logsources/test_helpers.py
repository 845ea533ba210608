"""The helpers transform authors import."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tarn.logsources.helpers import (
    dig,
    ip_or_none,
    json_text,
    parse_ts,
    reference_time,
    syslog_facility_name,
    syslog_severity_name,
    syslog_ts,
    to_bool,
    to_float,
    to_int,
    unique,
)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-11-20T01:02:03Z", "2026-11-20T01:02:03+00:00"),
        ("2026-11-20T01:02:03.123456789Z", "2026-11-20T01:02:03.123456+00:00"),
        ("1795136523.25", "2026-11-20T01:02:03.250000+00:00"),
        (1795136523000000, "2026-11-20T01:02:03+00:00"),
        (1795136523000000000, "2026-11-20T01:02:03+00:00"),
        (datetime(2026, 11, 20, 1, 2, 3), "2026-11-20T01:02:03+00:00"),
    ],
)
def test_parse_ts(value, iso) -> None:
    assert parse_ts(value).isoformat() == iso


@pytest.mark.parametrize("value", ["", "2026-13-01", float("nan"), 1e300, {"t": 1}, False])
def test_parse_ts_rejects(value) -> None:
    with pytest.raises(ValueError):
        parse_ts(value)


@pytest.mark.parametrize(
    ("text", "hint", "iso"),
    [
        ("Nov 20 01:02:03", None, "2026-11-20T01:02:03+00:00"),
        ("Nov  5 01:02:03", None, "2026-11-05T01:02:03+00:00"),
        ("Jan  2 00:00:00", None, "2026-01-02T00:00:00+00:00"),
        ("Dec 31 23:00:00", 2024, "2024-12-31T23:00:00+00:00"),
        ("Nov 20 2025 01:02:03", None, "2025-11-20T01:02:03+00:00"),
        ("Nov 20 01:02:03.250 +01:00", None, "2026-11-20T00:02:03.250000+00:00"),
        ("2026-11-20T01:02:03.5+01:00", None, "2026-11-20T00:02:03.500000+00:00"),
        ("Feb 29 12:00:00", None, "2024-02-29T12:00:00+00:00"),  # 2026 has none: the last leap year
    ],
)
def test_syslog_ts(text: str, hint: int | None, iso: str) -> None:
    with reference_time(datetime(2026, 11, 21, tzinfo=UTC)):
        assert syslog_ts(text, hint).isoformat() == iso


def test_syslog_ts_puts_future_times_in_last_year() -> None:
    with reference_time(datetime(2027, 1, 2, tzinfo=UTC)):
        assert syslog_ts("Dec 31 23:59:59").year == 2026
        assert syslog_ts("Jan  3 00:00:00").year == 2027  # up to a day ahead: clock skew


@pytest.mark.parametrize(
    "text", ["", "Foo 20 01:02:03", "Nov 31 01:02:03", "Nov 20 25:02:03", "yesterday"]
)
def test_syslog_ts_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        syslog_ts(text, 2026)


def test_small_helpers() -> None:
    assert ip_or_none("10.0.0.1") == "10.0.0.1"
    assert ip_or_none("::ffff:10.0.0.1") == "10.0.0.1"
    assert ip_or_none("[2001:db8::1]") == "2001:db8::1"
    assert ip_or_none("fe80::1%eth0") == "fe80::1"
    assert ip_or_none("ec2.amazonaws.com") is None and ip_or_none(None) is None
    assert [to_int(v) for v in ("42", " 7 ", "0x1f", "3.0", "3.5", "-", None, True)] == [
        42,
        7,
        31,
        3,
        None,
        None,
        None,
        1,
    ]
    assert [to_float(v) for v in ("1.5", "nan", "x", 2)] == [1.5, None, None, 2.0]
    assert [to_bool(v) for v in ("Yes", "f", "T", 1, 2, "maybe")] == [
        True,
        False,
        True,
        True,
        None,
        None,
    ]
    assert unique(["a", None, "", "b", "a", ["c", ["b"]], 5]) == ["a", "b", "c", "5"]
    assert unique(None) == [] and unique("x") == ["x"]
    assert dig({"a": {"b": [{"c": 1}]}}, "a.b.0.c") == 1 and dig({"a": 1}, "a.b", "d") == "d"
    assert json_text({"b": 1, "a": None}) == '{"a":null,"b":1}' and json_text(None) is None
    assert syslog_facility_name(4) == "auth" and syslog_severity_name(6) == "informational"
    assert syslog_facility_name(99) is None
