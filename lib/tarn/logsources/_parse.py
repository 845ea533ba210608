"""Raw bytes -> records: decompression by magic number, then the source's ingest format.

Each item is (position, raw_text, record) where record is an Exception for a line that could
not be parsed, so the caller can sideline it with its reason and raw text.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

Parsed = tuple[int, str, Any]


class ParseError(ValueError):
    pass


def decompressed(stream: IO[bytes]) -> IO[bytes]:
    """A reader over the decompressed content; compression is told by the first bytes."""
    buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
    head = buffered.peek(4)[:4]  # type: ignore[attr-defined]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered)  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(
        io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    ):
        text = line.rstrip("\r\n")
        if text.strip():
            yield n, text


def _dig(doc: Any, path: str | None) -> Any:
    for part in (path or "").split("."):
        if part:
            if not isinstance(doc, dict) or part not in doc:
                raise ParseError(f"records path {path!r} not found in the document")
            doc = doc[part]
    return doc


def parse_ndjson(stream: IO[bytes]) -> Iterator[Parsed]:
    for n, text in _lines(stream):
        try:
            yield n, text, json.loads(text)
        except json.JSONDecodeError as exc:
            yield n, text, ParseError(f"invalid JSON: {exc.msg} at column {exc.colno}")


def parse_json(stream: IO[bytes], records_path: str | None) -> Iterator[Parsed]:
    """A JSON document holding records at `records_path`, or NDJSON of records or documents."""
    data = stream.read()
    stripped = data.lstrip()
    if stripped[:1] == b"{":
        try:
            doc = json.loads(data)
        except json.JSONDecodeError:
            doc = None  # maybe NDJSON: one object per line
        if isinstance(doc, dict):
            text = data.decode("utf-8", "replace")
            if records_path and records_path.split(".")[0] in doc:
                yield from _records_of(doc, records_path, 0, text)
            else:
                yield 0, text.strip(), doc  # a single record on its own
            return
    for n, text, item in parse_ndjson(io.BytesIO(data)):
        if isinstance(item, dict) and records_path and records_path.split(".")[0] in item:
            yield from _records_of(item, records_path, n, text)
        else:
            yield n, text, item


def _records_of(doc: dict[str, Any], path: str | None, base: int, text: str) -> Iterator[Parsed]:
    try:
        records = _dig(doc, path)
    except ParseError as exc:
        yield base, text, exc
        return
    if not isinstance(records, list):
        yield base, text, ParseError(f"records path {path!r} is not a list")
        return
    for i, record in enumerate(records):
        yield base + i, json.dumps(record, separators=(",", ":")), record


def parse(stream: IO[bytes], fmt: str, records_path: str | None = None) -> Iterator[Parsed]:
    plain = decompressed(stream)
    if fmt == "ndjson":
        return parse_ndjson(plain)
    if fmt == "json":
        return parse_json(plain, records_path)
    raise ParseError(f"unknown ingest format {fmt!r}; known: json, ndjson")
