"""Delimited text: `csv` and `tsv` with a header line, and Zeek logs (TSV with `#fields`,
or Zeek's JSON lines).

csv/tsv records are dicts header -> text, with empty fields as None. `csv` follows RFC 4180
quoting (a quoted field may hold the delimiter, quotes and line breaks); `tsv` has no quoting,
as IANA's text/tab-separated-values. A record whose field count differs from the header's is
sidelined.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import IO, Any, Literal

from tarn.logsources._json import decode_line
from tarn.logsources._parse import (
    MAX_LINE,
    Fields,
    Ingest,
    Parsed,
    ParseError,
    ZeekRow,
    lines,
    prefixed,
    safely,
)

# The csv module refuses fields over 128 KiB by default; a field may be as long as a line.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))


def parse_csv(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    return _with_header(stream, ingest.delimiter or ",", csv.QUOTE_MINIMAL, lazy)


def parse_tsv(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    return _with_header(stream, "\t", csv.QUOTE_NONE, lazy)


def _with_header(
    stream: IO[bytes], delimiter: str, quoting: Literal[0, 1, 2, 3], lazy: bool = False
) -> Iterator[Parsed]:
    source = lines(stream, blank=True)
    header: list[str] | None = None
    what = "CSV" if quoting != csv.QUOTE_NONE else "TSV"
    # A line without a quote, CR or NUL is split as the csv module would split it; others go
    # to the csv module, which may read on to later lines (a quoted field with line breaks).
    special = re.compile("[\r\0]" if quoting == csv.QUOTE_NONE else '["\r\0]').search
    for n, text, err in source:
        if err is not None:
            yield n, text, err
            continue
        if not special(text):
            if not text.replace(delimiter, "").strip():
                continue  # fields of white space only: a blank line, as below
            row = text.split(delimiter)
            position, raw = n, text
        else:
            taken: list[tuple[int, str]] = []
            too_long: list[Parsed] = []
            read = _csv_record(n, text, source, taken, too_long, delimiter, quoting)
            yield from too_long
            if not taken:
                continue
            position, raw = taken[0][0], "\n".join(t for _, t in taken)
            if isinstance(read, Exception):
                yield position, raw, ParseError(f"invalid {what}: {read}")
                continue
            if not read or not any(field.strip() for field in read):
                continue
            row = read
        if header is None:
            header = [name.strip() or f"column{i + 1}" for i, name in enumerate(row)]
            continue
        if len(row) != len(header):
            yield position, raw, ParseError(f"{len(row)} fields where the header has {len(header)}")
            continue
        fields = Fields(header, row)
        yield position, raw, fields if lazy else fields.record()


def _csv_record(
    n: int,
    text: str,
    source: Iterator[tuple[int, str, ParseError | None]],
    taken: list[tuple[int, str]],
    too_long: list[Parsed],
    delimiter: str,
    quoting: Literal[0, 1, 2, 3],
) -> list[str] | Exception:
    """One record read by the csv module from `text` and, while it asks, the lines after it
    (`taken` gets the lines it read; over-long ones go to `too_long`, read as blank)."""

    def feed() -> Iterator[str]:
        taken.append((n, text))
        yield text + "\n"
        for m, more, err in source:
            if err is not None:
                too_long.append((m, more, err))
                yield "\n"
                continue
            taken.append((m, more))
            yield more + "\n"

    reader = csv.reader(feed(), delimiter=delimiter, quoting=quoting, strict=False)
    try:
        return next(reader, [])
    except csv.Error as exc:
        return exc


# -- Zeek -------------------------------------------------------------------------------------
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unescape(text: str) -> str:
    """Zeek writes the separator and non-printable bytes as \\xNN."""
    if "\\x" not in text:
        return text
    return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


class ZeekLayout:
    """What a Zeek TSV log's header says about the lines after it: their fields and how
    values are written. Each change of a directive makes a new layout."""

    __slots__ = ("containers", "empty", "fields", "path", "set_separator", "unset")

    def __init__(self, header: _ZeekHeader) -> None:
        self.fields = tuple(header.fields or ())
        self.containers = tuple(header.containers)
        self.set_separator = header.set_separator
        self.empty = header.empty
        self.unset = header.unset
        self.path = header.path

    def record(self, values: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value, container in zip(self.fields, values, self.containers, strict=True):
            if value == self.unset:
                out[name] = None
            elif container:
                out[name] = (
                    []
                    if value == self.empty
                    else [_unescape(v) for v in value.split(self.set_separator)]
                )
            else:
                out[name] = "" if value == self.empty else _unescape(value)
        out["_path"] = self.path
        return out

    def columns(self, rows: list[list[str]]) -> dict[str, list[Any]]:
        """The records of `rows` by key, a list per key: what record() gives, column-wise."""
        by_column = list(zip(*rows, strict=True)) or [() for _ in self.fields]
        unset, empty, sep = self.unset, self.empty, self.set_separator
        out: dict[str, list[Any]] = {}
        for name, values, container in zip(self.fields, by_column, self.containers, strict=True):
            escaped = "\\x" in "\n".join(values)  # no value holds a line break
            unescape = _unescape if escaped else str
            if container:
                out[name] = [
                    None
                    if v == unset
                    else []
                    if v == empty
                    else [unescape(x) for x in v.split(sep)]
                    if escaped or sep in v
                    else [v]
                    for v in values
                ]
            elif escaped:
                out[name] = [
                    None if v == unset else "" if v == empty else _unescape(v) for v in values
                ]
            else:
                out[name] = [None if v == unset else "" if v == empty else v for v in values]
        out["_path"] = [self.path] * len(rows)
        return out


class _ZeekHeader:
    def __init__(self, path: str | None) -> None:
        self.separator = "\t"
        self.set_separator = ","
        self.empty = "(empty)"
        self.unset = "-"
        self.path = path
        self.fields: list[str] | None = None
        self.containers: list[bool] = []
        self._layout: ZeekLayout | None = None

    def directive(self, text: str) -> None:
        self._layout = None
        if text.startswith("#separator"):
            self.separator = _unescape(text[len("#separator") :].strip()) or "\t"
            return
        name, _, value = text[1:].partition(self.separator)
        values = value.split(self.separator)
        if name == "set_separator":
            self.set_separator = _unescape(value) or ","
        elif name == "empty_field":
            self.empty = value
        elif name == "unset_field":
            self.unset = value
        elif name == "path":
            self.path = value or self.path
        elif name == "fields":
            self.fields = values
            self.containers = [False] * len(values)
        elif name == "types" and self.fields is not None:
            types = values + [""] * (len(self.fields) - len(values))
            self.containers = [t.startswith(("set[", "vector[")) for t in types[: len(self.fields)]]

    def split(self, text: str) -> list[str]:
        if self.fields is None:
            raise ParseError("data line before the #fields header")
        values = text.split(self.separator)
        if len(values) != len(self.fields):
            raise ParseError(f"{len(values)} fields where #fields has {len(self.fields)}")
        return values

    def layout(self) -> ZeekLayout:
        if self._layout is None:
            self._layout = ZeekLayout(self)
        return self._layout

    def record(self, text: str) -> dict[str, Any]:
        return self.layout().record(self.split(text))

    def row(self, text: str) -> ZeekRow:
        return ZeekRow(self.layout(), self.split(text))


def _zeek_json(text: str, default_path: str | None) -> dict[str, Any]:
    record = decode_line(text)
    if not isinstance(record, dict):
        raise ParseError(f"a Zeek JSON line must be an object, got {type(record).__name__}")
    if record.get("_path") is None:
        record["_path"] = default_path
    return record


def parse_zeek(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    head = b""
    while len(head) < 1 << 16:  # sniff the first non-space byte
        chunk = stream.read(4096)
        if not chunk:
            break
        head += chunk
        if head.strip():
            break
    rest = prefixed(head, stream)
    if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
        for n, text, err in lines(rest):
            yield (
                n,
                text,
                err if err is not None else safely(lambda t: _zeek_json(t, ingest.table), text),
            )
        return
    header = _ZeekHeader(ingest.table)
    read = header.row if lazy else header.record
    layout, separator, width = None, "\t", -1  # lazy: a line of the header's width, split here
    for n, text, err in lines(rest):
        if err is not None:
            yield n, text, err
        elif text.startswith("#"):
            header.directive(text)
            if lazy and header.fields is not None:
                layout, separator, width = header.layout(), header.separator, len(header.fields)
        else:
            values = text.split(separator) if layout is not None else []
            if len(values) == width:
                yield n, text, ZeekRow(layout, values)
            else:
                yield n, text, safely(read, text)
