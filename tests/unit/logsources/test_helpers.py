"""The helpers transform authors import."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tarn.logsources.helpers import (
    as_dict,
    dig,
    digits_int_or_none,
    int_cast_or_none,
    ip_or_none,
    iso_ts_or_none,
    json_text,
    json_text_nonempty,
    parse_ts,
    reference_time,
    strict_ip_or_none,
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


# --- the strict variants the built-in transforms use -------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),  # not unwrapped, unlike ip_or_none
        ("fe80::1%eth0", "fe80::1%eth0"),  # zone kept
        (" 10.0.0.1", None),  # not trimmed
        ("[::1]", None),
        ("", None),
        ("gce-internal-ip", None),
        (None, None),
        (167772161, None),
    ],
)
def test_strict_ip_or_none(value: object, expected: str | None) -> None:
    assert strict_ip_or_none(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T01:02:03Z", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-20T02:02:03+01:00", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-20T01:02:03", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("1795136523", None),  # no epoch text, unlike parse_ts
        (1795136523, None),
        ("not a time", None),
        ("", None),
        (None, None),
    ],
)
def test_iso_ts_or_none(value: object, expected: datetime | None) -> None:
    assert iso_ts_or_none(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        ("42", 42),
        (" 42 ", 42),
        (2.9, 2),  # truncated, unlike to_int
        (True, None),
        ("0x10", None),
        ("4.0", None),
        (None, None),
        ([1], None),
        (float("nan"), None),
    ],
)
def test_int_cast_or_none(value: object, expected: int | None) -> None:
    assert int_cast_or_none(value) == expected


def test_as_dict() -> None:
    d = {"a": 1}
    assert as_dict(d) is d
    assert as_dict(None) == {}
    assert as_dict([("a", 1)]) == {}
    assert as_dict("x") == {}


def test_json_text_nonempty() -> None:
    assert json_text_nonempty({"b": 1, "a": [1, 2]}, sort_keys=True) == '{"a":[1,2],"b":1}'
    assert json_text_nonempty({"b": 1, "a": 2}, sort_keys=False) == '{"b":1,"a":2}'
    for empty in (None, {}, []):
        assert json_text_nonempty(empty, sort_keys=True) is None
    assert json_text_nonempty("", sort_keys=True) == '""'
    assert json_text_nonempty(0, sort_keys=True) == "0"
    assert json_text_nonempty(["é", 1e16], sort_keys=False) == '["é",1e16]'  # UTF-8 as it is
    with pytest.raises(TypeError):
        json_text_nonempty({"what": object()}, sort_keys=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        ("42", 42),
        (" 42", None),
        ("-1", None),
        ("4.0", None),
        (2.0, None),
        (True, None),
        (None, None),
    ],
)
def test_digits_int_or_none(value: object, expected: int | None) -> None:
    assert digits_int_or_none(value) == expected


def test_split_domain() -> None:
    from tarn.logsources.helpers import split_domain

    assert split_domain("a.b.example.com") == ("example.com", "a.b", "com")
    assert split_domain("mail.example.co.uk.") == ("example.co.uk", "mail", "co.uk")
    assert split_domain("example.com") == ("example.com", None, "com")
    assert split_domain("localhost") == (None, None, None)
    assert split_domain("1.2.0.192.in-addr.arpa") == (None, None, None)
    assert split_domain("192.0.2.1") == (None, None, None)
