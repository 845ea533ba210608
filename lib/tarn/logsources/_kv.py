"""`key=value` lines and CEF (ArcSight Common Event Format).

kv: pairs separated by spaces; a value is either bare (up to the next space) or
double-quoted with `\\"` and `\\\\` escapes. Text that is not a pair (a syslog header before
the pairs, say) is skipped; a line without any pair is sidelined.

CEF: `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension`, anywhere in the
line (a syslog header may come first). In the header `\\|` and `\\\\` are escapes; in the
extension `\\=`, `\\\\`, `\\n` and `\\r`. An extension value runs to the next ` key=`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from tarn.logsources._parse import Ingest, Parsed, ParseError, per_line

_PAIR = re.compile(
    r'(?<![^\s,;<>])([A-Za-z_@][\w.\-@\[\]]*)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', re.DOTALL
)
_KV_UNESCAPE = re.compile(r'\\(["\\])')


def decode_kv(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _PAIR.finditer(line):
        key, quoted, bare = m.groups()
        if quoted is not None:
            out[key] = _KV_UNESCAPE.sub(r"\1", quoted)
        else:
            if bare.startswith('"'):
                raise ParseError(f"unterminated quoted value for key {key!r}")
            out[key] = bare
    if not out:
        raise ParseError("no key=value pairs in the line")
    return out


def parse_kv(stream: IO[bytes], ingest: Ingest) -> Iterator[Parsed]:
    return per_line(stream, decode_kv)


_CEF_FIELD = re.compile(r"((?:[^|\\]|\\.)*)\|", re.DOTALL)
_CEF_HEADER_UNESCAPE = re.compile(r"\\([|\\])")
_CEF_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\-\[\]]+)=")
_CEF_VALUE_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r", "|": "|"}
_CEF_VALUE_UNESCAPE = re.compile(r"\\([\\=nr|])")
_CEF_HEADER = ("cef_version", "device_vendor", "device_product", "device_version", "signature_id", "name", "severity")  # fmt: skip


def _unescape_value(value: str) -> str:
    if "\\" not in value:
        return value
    return _CEF_VALUE_UNESCAPE.sub(lambda m: _CEF_VALUE_ESCAPES[m.group(1)], value)


def _extension(text: str) -> dict[str, str]:
    keys = list(_CEF_KEY.finditer(text))
    if text.strip() and (not keys or text[: keys[0].start()].strip()):
        raise ParseError("CEF extension must be key=value pairs")
    out: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        out[m.group(1)] = _unescape_value(text[m.end() : end].rstrip())
    return out


def decode_cef(line: str) -> dict[str, Any]:
    start = line.find("CEF:")
    if start < 0:
        raise ParseError("not a CEF line: no 'CEF:' header")
    i = start + 4
    header: list[str] = []
    while len(header) < 7:
        m = _CEF_FIELD.match(line, i)
        if not m:
            if len(header) == 6:  # severity with no trailing '|' and no extension
                header.append(line[i:])
                i = len(line)
                break
            raise ParseError(
                f"CEF header has {len(header) + 1} fields, needs 7 before the extension"
            )
        header.append(m.group(1))
        i = m.end()
    record: dict[str, Any] = {
        key: _CEF_HEADER_UNESCAPE.sub(r"\1", value)
        for key, value in zip(_CEF_HEADER, header, strict=True)
    }
    record["cef_version"] = record["cef_version"].strip()
    if not record["cef_version"].isdigit():
        raise ParseError(f"CEF version must be a number, got {record['cef_version'][:20]!r}")
    record["extensions"] = _extension(line[i:])
    return record


def parse_cef(stream: IO[bytes], ingest: Ingest) -> Iterator[Parsed]:
    return per_line(stream, decode_cef)
