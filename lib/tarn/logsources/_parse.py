"""Raw bytes -> records: decompression told by magic number, then the source's ingest format.

Each item is (position, raw_text, record) where record is a ParseError for a record that
could not be parsed, so the caller can sideline it with its reason and raw text. Every
format reads the object as a stream: memory stays bounded by the largest record, never by
the object (lines are cut at MAX_LINE bytes, JSON records at MAX_RECORD characters).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

MAX_LINE = 32 << 20  # bytes: a longer line is sidelined (its first MAX_RAW chars kept)
MAX_RECORD = 64 << 20  # characters: a longer JSON record inside a document is sidelined
MAX_RAW = 1 << 20  # characters of raw text kept on a sidelined oversize record
READ_SIZE = 1 << 20

Parsed = tuple[int, str, Any]
Parser = Callable[[IO[bytes], "Ingest"], Iterator[Parsed]]


class ParseError(ValueError):
    pass


class _Undecoded:
    def __repr__(self) -> str:
        return "UNDECODED"


# The record of an item parsed with lazy=True whose raw text is exactly one JSON value: the
# caller decodes it (_json.decode_line gives what the parser would have).
UNDECODED: Any = _Undecoded()


class _Unparsed:
    def __repr__(self) -> str:
        return "SYSLOG_LINE"


# The record of a syslog line parsed with lazy=True: _syslog.decode_line reads it.
SYSLOG_LINE: Any = _Unparsed()


class Fields:
    """A delimited row as parsed with lazy=True: its fields under the file's header ("" is
    an empty field). `record()` is the dict the parser gives otherwise."""

    __slots__ = ("header", "values")

    def __init__(self, header: list[str], values: list[str]) -> None:
        self.header = header
        self.values = values

    def record(self) -> dict[str, str | None]:
        return {
            name: (value if value != "" else None)
            for name, value in zip(self.header, self.values, strict=True)
        }


class ZeekRow:
    """A Zeek TSV line as parsed with lazy=True: its fields split, not yet read. `layout` is
    what the header directives before it said (_delimited.ZeekLayout); `record()` is the dict
    the parser gives otherwise."""

    __slots__ = ("layout", "values")

    def __init__(self, layout: Any, values: list[str]) -> None:
        self.layout = layout
        self.values = values

    def record(self) -> dict[str, Any]:
        return self.layout.record(self.values)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Ingest:
    """The `ingest:` block of log_source.yml."""

    format: str = "ndjson"
    records_path: str | None = None
    keep_original: bool = True
    delimiter: str = ","
    table: str | None = None


class _Prefixed(io.RawIOBase):
    """Bytes already read (to sniff the format), then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def prefixed(head: bytes, rest: IO[bytes]) -> IO[bytes]:
    return io.BufferedReader(_Prefixed(head, rest), buffer_size=1 << 16)


def decompressed(stream: IO[bytes]) -> IO[bytes]:
    """A buffered reader over the decompressed content; compression is told by the first bytes."""
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=1 << 16)  # type: ignore[arg-type]
    return buffered  # type: ignore[no-any-return]


def lines(stream: IO[bytes], blank: bool = False) -> Iterator[tuple[int, str, ParseError | None]]:
    """(line number from 0, text without its line end, error) for each line.

    A line longer than MAX_LINE bytes is skipped to its end without being held in memory and
    comes back with a ParseError and its first MAX_RAW characters. Invalid UTF-8 becomes
    U+FFFD, so binary garbage is text that fails to parse, not an exception.
    """
    n = -1
    while True:
        data = stream.readline(MAX_LINE + 1)
        if not data:
            return
        n += 1
        if len(data) > MAX_LINE and not data.endswith(b"\n"):
            size = len(data)
            while True:
                rest = stream.readline(READ_SIZE)
                size += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            head = data[:MAX_RAW].decode("utf-8", "replace")
            yield (
                n,
                head,
                ParseError(f"line of {size} bytes is longer than the limit of {MAX_LINE} bytes"),
            )
            continue
        text = data.decode("utf-8", "replace")
        if n == 0 and text.startswith("\ufeff"):
            text = text[1:]
        text = text.rstrip("\r\n")
        if blank or text.strip():
            yield n, text, None


def safely(fn: Callable[[str], Any], text: str) -> Any:
    """fn(text), or a ParseError saying why not: a parser bug must not stop the object."""
    try:
        return fn(text)
    except ParseError as exc:
        return exc
    except RecursionError:
        return ParseError("nested too deeply")
    except ValueError as exc:
        return ParseError(str(exc))
    except Exception as exc:
        return ParseError(f"unexpected {type(exc).__name__} in the parser: {exc}")


def eager(record: Any, raw: str) -> Any:
    """The record the parser gives without lazy=True, for one it gave with it (a record
    already decoded stays as it is; one that does not parse is its ParseError)."""
    if record is UNDECODED or record is SYSLOG_LINE:
        from tarn.logsources import _json, _syslog

        return safely(_json.decode_line if record is UNDECODED else _syslog.decode_line, raw)
    if type(record) is Fields or type(record) is ZeekRow:
        return record.record()
    return record


def per_line(stream: IO[bytes], decode: Callable[[str], Any]) -> Iterator[Parsed]:
    for n, text, err in lines(stream):
        yield n, text, err if err is not None else safely(decode, text)


def registry() -> dict[str, Parser]:
    from tarn.logsources import _delimited, _json, _kv, _syslog

    return {
        "json": _json.parse_json,
        "ndjson": _json.parse_ndjson,
        "csv": _delimited.parse_csv,
        "tsv": _delimited.parse_tsv,
        "zeek": _delimited.parse_zeek,
        "syslog": _syslog.parse_syslog,
        "kv": _kv.parse_kv,
        "cef": _kv.parse_cef,
    }


def parse(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    """The items of one raw object. With `lazy`, a JSON format leaves the lines that are one
    record each undecoded (UNDECODED), csv/tsv give Fields, not dicts, syslog lines stay
    unparsed (SYSLOG_LINE) and Zeek TSV lines give ZeekRow: the batch path reads them itself,
    typed and by column."""
    parsers = registry()
    if ingest.format not in parsers:
        raise ParseError(f"unknown ingest format {ingest.format!r}; known: {', '.join(parsers)}")
    if lazy and ingest.format in ("json", "ndjson", "csv", "tsv", "syslog", "zeek"):
        from tarn.logsources import _delimited, _json, _syslog

        lazy_parsers = {
            "json": _json.parse_json,
            "ndjson": _json.parse_ndjson,
            "csv": _delimited.parse_csv,
            "tsv": _delimited.parse_tsv,
            "syslog": _syslog.parse_syslog,
            "zeek": _delimited.parse_zeek,
        }
        return lazy_parsers[ingest.format](decompressed(stream), ingest, lazy=True)
    return parsers[ingest.format](decompressed(stream), ingest)
