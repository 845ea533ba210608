"""Syslog lines, RFC 5424 and RFC 3164 (BSD), told apart per line.

RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`, `-` for
nil values. RFC 3164: `[<PRI>]TIMESTAMP [HOSTNAME] [TAG[PID]:] MSG` where TIMESTAMP is
`Mmm dd hh:mm:ss` (an optional year, fractions and zone are accepted, and so is an RFC 3339
time as rsyslog writes it). The timestamp is handed over as text: see helpers.syslog_ts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from tarn.logsources._parse import Ingest, Parsed, ParseError, per_line

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


def parse_syslog(stream: IO[bytes], ingest: Ingest) -> Iterator[Parsed]:
    return per_line(stream, decode_line)
