"""Syslog lines, RFC 5424 and RFC 3164 (BSD), told apart per line.

RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`, `-` for
nil values. RFC 3164: `[<PRI>]TIMESTAMP [HOSTNAME] [TAG[PID]:] MSG` where TIMESTAMP is
`Mmm dd hh:mm:ss` (an optional year, fractions and zone are accepted, and so is an RFC 3339
time as rsyslog writes it). The timestamp is handed over as text: see helpers.syslog_ts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources._parse import SYSLOG_LINE, Ingest, Parsed, ParseError, lines, per_line

_RFC5424 = re.compile(r"<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ?")
_PRI = re.compile(r"<(\d{1,3})>")
_BSD_TS = re.compile(
    r"[A-Za-z]{3} +\d{1,2}(?: \d{4})? \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?: ?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})(?= |$))?"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
)
_TAG = re.compile(r"([^\s\[\]:]{1,128})(?:\[([^\]\s]{0,64})\])?:(?: |$)")
_SD_NAME = re.compile(r"[^ =\]\"]{1,64}")
_SD_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _priority(text: str) -> tuple[int, int]:
    pri = int(text)
    if pri > 191:
        raise ParseError(f"syslog priority <{pri}> is above 191")
    return pri >> 3, pri & 7


def _structured_data(line: str, i: int) -> tuple[dict[str, dict[str, str]] | None, int]:
    if line.startswith("-", i):
        return None, i + 1
    if not line.startswith("[", i):
        raise ParseError("RFC 5424 structured data must be '-' or start with '['")
    out: dict[str, dict[str, str]] = {}
    while line.startswith("[", i):
        m = _SD_NAME.match(line, i + 1)
        if not m:
            raise ParseError(f"RFC 5424 structured data: no SD-ID at character {i + 1}")
        params = out.setdefault(m.group(), {})
        i = m.end()
        while line.startswith(" ", i):
            name = _SD_NAME.match(line, i + 1)
            if not name or not line.startswith("=", name.end()):
                raise ParseError(
                    f'RFC 5424 structured data: expected name="value" at character {i + 1}'
                )
            value = _SD_VALUE.match(line, name.end() + 1)
            if not value:
                raise ParseError(
                    f"RFC 5424 structured data: unterminated value at character {name.end() + 1}"
                )
            params[name.group()] = _SD_UNESCAPE.sub(r"\1", value.group(1))
            i = value.end()
        if not line.startswith("]", i):
            raise ParseError(f"RFC 5424 structured data: expected ']' at character {i}")
        i += 1
    return out, i


def _rfc5424(line: str, m: re.Match[str]) -> dict[str, Any]:
    facility, severity = _priority(m.group(1))
    timestamp = m.group(3)
    if timestamp == "-":
        raise ParseError("RFC 5424 line without a timestamp (NILVALUE)")
    sd, i = _structured_data(line, m.end())
    message = line[i:]
    if message.startswith(" "):
        message = message[1:]
    return {
        "facility": facility,
        "severity": severity,
        "timestamp": timestamp,
        "hostname": _nil(m.group(4)),
        "appname": _nil(m.group(5)),
        "procid": _nil(m.group(6)),
        "msgid": _nil(m.group(7)),
        "structured_data": sd,
        "message": message.removeprefix("\ufeff"),
        "format": "rfc5424",
    }


def _rfc3164(line: str) -> dict[str, Any]:
    facility = severity = None
    i = 0
    pri = _PRI.match(line)
    if pri:
        facility, severity = _priority(pri.group(1))
        i = pri.end()
    ts = _BSD_TS.match(line, i)
    if not ts:
        raise ParseError(
            "not a syslog line: expected <PRI> and an RFC 3164 (Mmm dd hh:mm:ss) or RFC 5424 header"
        )
    rest = line[ts.end() :]
    rest = rest[1:] if rest.startswith(" ") else rest
    hostname = None
    tag = _TAG.match(rest)
    if not tag:
        host, _, after = rest.partition(" ")
        if host and after:
            hostname, rest = host, after
            tag = _TAG.match(rest)
    appname = procid = None
    if tag:
        appname, procid = tag.group(1), tag.group(2)
        rest = rest[tag.end() :]
    return {
        "facility": facility,
        "severity": severity,
        "timestamp": ts.group(),
        "hostname": hostname,
        "appname": appname,
        "procid": procid,
        "msgid": None,
        "structured_data": None,
        "message": rest,
        "format": "rfc3164",
    }


def decode_line(line: str) -> dict[str, Any]:
    m = _RFC5424.match(line)
    return _rfc5424(line, m) if m else _rfc3164(line)


def parse_syslog(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    if lazy:
        return ((n, text, SYSLOG_LINE if err is None else err) for n, text, err in lines(stream))
    return per_line(stream, decode_line)


# -- many lines at once, for the batch path ----------------------------------------------------
FIELDS = ("facility", "severity", "timestamp", "hostname", "appname", "procid", "msgid", "message")
# The two most common shapes, which decode_line reads as follows, on printable ASCII (where
# Python's \s, \S and \d mean what Arrow's regex engine means by them). RFC 3164 with a
# hostname and a tag: the tag cannot be read from the hostname (no ':', '[' or ']' in it), so
# decode_line takes the hostname, then the tag; a time zone word in the hostname's place
# would be read as part of the time instead, so such lines are left to decode_line.
_ASCII = r"^[\x20-\x7e]*$"
_ZONE_WORD = r"^(?:Z|UTC|GMT|[+-][0-9]{2}:?[0-9]{2})$"
# RFC 3164 read in two steps, as Arrow's engine extracts groups slowly from a long tail or a
# bounded repeat: the head up to the tag's ":" (there is one way only to read it), then the
# rest of the line, which must be empty or a space and the message; a tag over 128
# characters or a pid over 64 is left to decode_line, as decode_line's own pattern does.
_BSD_HEAD = (
    r"^(?:<(?P<pri>[0-9]{1,3})>)?(?P<ts>[A-Za-z]{3} +[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}) "
    r"(?P<host>[^ \[\]:]+) (?P<tag>[^ \[\]:]+)(?P<pid>\[[^\] ]*\])?:"
)
# RFC 5424 without structured data ("-"): the message is what follows it, less one space. The
# space before "-" is required: decode_line reads MSGID to its end, then the structured data.
_NEW_LINE = (
    r"^<(?P<pri>[0-9]{1,3})>(?P<v>[0-9]{1,2}) (?P<ts>[^ ]+) (?P<host>[^ ]+) (?P<app>[^ ]+) "
    r"(?P<pid>[^ ]+) (?P<msgid>[^ ]+) -(?P<sp> ?)(?P<msg>.*)$"
)


def read_columns(texts: Sequence[str]) -> tuple[dict[str, pa.Array], pa.Array]:
    """What decode_line gives for each line, as columns of FIELDS (plus `format`), for the
    lines of the common shapes; and, per line, whether it is one of those (the others are
    for decode_line, one by one)."""
    lines_ = pa.array(texts, pa.string())
    n = len(lines_)
    ascii_ = pc.match_substring_regex(lines_, _ASCII)
    candidates = pc.if_else(ascii_, lines_, None)
    head = pc.extract_regex(candidates, _BSD_HEAD)
    b = {name: pc.struct_field(head, name) for name in ("pri", "ts", "host", "tag", "pid")}
    tail = pc.replace_substring_regex(candidates, _BSD_HEAD, "", max_replacements=1)
    bsd_ok = pc.and_(
        pc.and_(pc.is_valid(head), pc.less_equal(pc.utf8_length(b["tag"]), 128)),
        pc.and_(
            pc.less_equal(pc.utf8_length(b["pid"]), 66),  # "[" and "]" around at most 64
            pc.or_(pc.equal(tail, ""), pc.starts_with(tail, " ")),
        ),
    )
    b["msg"] = pc.utf8_slice_codeunits(tail, 1)
    new = pc.extract_regex(candidates, _NEW_LINE)
    r = {
        name: pc.struct_field(new, name)
        for name in ("pri", "ts", "host", "app", "pid", "msgid", "msg")
    }
    is_bsd = pc.and_(
        pc.fill_null(bsd_ok, False),
        pc.invert(pc.match_substring_regex(pc.fill_null(b["host"], ""), _ZONE_WORD)),
    )
    is_new = pc.and_(pc.is_valid(new), pc.not_equal(pc.fill_null(r["ts"], "-"), "-"))
    # no <PRI> (a file written by syslogd): no facility or severity; extract_regex gives ""
    bsd_pri = pc.if_else(pc.equal(b["pri"], ""), None, b["pri"])
    pri = pc.if_else(is_bsd, bsd_pri, r["pri"]).cast(pa.int64())
    fast = pc.and_(pc.or_(is_bsd, is_new), pc.less_equal(pc.fill_null(pri, 0), 191))
    fast = pc.fill_null(fast, False)

    def nil(values: pa.Array) -> pa.Array:
        return pc.if_else(pc.equal(values, "-"), None, values)

    bracket = b["pid"]
    bsd_pid = pc.if_else(
        pc.greater(pc.fill_null(pc.binary_length(bracket), 0), 0),
        pc.utf8_slice_codeunits(bracket, 1, -1),
        None,
    )
    columns = {
        "facility": pc.shift_right(pri, 3),
        "severity": pc.bit_wise_and(pri, 7),
        "timestamp": pc.if_else(is_bsd, b["ts"], r["ts"]),
        "hostname": pc.if_else(is_bsd, b["host"], nil(r["host"])),
        "appname": pc.if_else(is_bsd, b["tag"], nil(r["app"])),
        "procid": pc.if_else(is_bsd, bsd_pid, nil(r["pid"])),
        "msgid": pc.if_else(is_bsd, pa.nulls(n, pa.string()), nil(r["msgid"])),
        "message": pc.if_else(is_bsd, pc.fill_null(b["msg"], ""), r["msg"]),
        "format": pc.if_else(is_bsd, "rfc3164", "rfc5424"),
    }
    return {k: pc.if_else(fast, v, None) for k, v in columns.items()}, fast
