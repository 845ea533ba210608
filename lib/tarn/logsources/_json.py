"""JSON formats: `ndjson` (one value per line) and `json` (a document holding its records at
`records_path`, e.g. CloudTrail's {"Records": [...]}, or NDJSON of records or documents).

A document of up to WHOLE_DOCUMENT characters (CloudTrail's delivery files are far smaller)
is split in one pass by msgspec, which gives each record's raw text without decoding it.
A larger one is read incrementally: the records array is split one record at a time with
the C decoder (`JSONDecoder.raw_decode`) over a sliding window of text, so a 1 GiB
document needs memory for one record, not for the document. Either way each record's raw
text is its exact slice of the input.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from collections.abc import Iterator
from typing import IO, Any, TypedDict

import msgspec

from tarn.logsources._parse import (
    MAX_RAW,
    MAX_RECORD,
    READ_SIZE,
    UNDECODED,
    Ingest,
    Parsed,
    ParseError,
    lines,
    per_line,
    prefixed,
    safely,
)

_DECODER = json.JSONDecoder()
# Same values as json.loads for what it accepts (big integers too), about 1.5x as fast.
_FAST = msgspec.json.Decoder()
_WS = re.compile(r"[ \t\n\r]*")
_SNIFF = READ_SIZE
_EDGE = 64  # a decode error this close to the end of the window may just need more text


def _invalid(exc: json.JSONDecodeError) -> ParseError:
    return ParseError(f"invalid JSON: {exc.msg} at column {exc.colno}")


def decode_line(text: str) -> Any:
    try:
        return _FAST.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        pass  # the standard library decides: it accepts a little more (NaN, lone surrogates)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(exc) from None
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None


def parse_ndjson(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    if lazy:
        return ((n, text, UNDECODED if err is None else err) for n, text, err in lines(stream))
    return per_line(stream, decode_line)


class _Text:
    """Decoded text of a stream, read on demand; `pos` indexes `buf`."""

    def __init__(self, stream: IO[bytes] | None, text: str = "") -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buf = text
        self.pos = 0
        self.eof = stream is None
        self.dropped = 0  # characters cut from the front of buf, for error offsets

    def more(self, at_least: int = READ_SIZE) -> bool:
        if self.eof or self.stream is None:
            return False
        data = self.stream.read(max(READ_SIZE, at_least))
        if not data:
            self.eof = True
            tail = self.decoder.decode(b"", final=True)
            self.buf += tail
            return bool(tail)
        self.buf += self.decoder.decode(data)
        return True

    def release(self) -> None:
        """Forget the text before `pos` (nothing earlier is needed any more)."""
        if self.pos > READ_SIZE:
            self.buf = self.buf[self.pos :]
            self.dropped += self.pos
            self.pos = 0

    def peek(self) -> str:
        """The next non-space character ("" at the end), without consuming it."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            found = self.buf[self.pos : self.pos + 20] or "the end of the object"
            raise ParseError(
                f"invalid JSON: expected {what} at character {self.offset()}, found {found!r}"
            )
        self.pos += 1

    def offset(self, pos: int | None = None) -> int:
        return self.dropped + (self.pos if pos is None else pos)

    def value(self) -> tuple[Any, int, int]:
        """Decode the next JSON value: (value, start, end) with buf[start:end] its text."""
        self.peek()
        start = self.pos
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buf) - _EDGE or exc.msg.startswith("Unterminated")
                if incomplete and not self.eof:
                    if len(self.buf) - start > MAX_RECORD:
                        raise ParseError(
                            f"record at character {self.offset(start)} is longer than {MAX_RECORD} characters"
                        ) from None
                    self.more(len(self.buf) - start)
                    continue
                raise ParseError(
                    f"invalid JSON: {exc.msg} at character {self.offset(exc.pos)}"
                ) from None
            if end >= len(self.buf) and not self.eof and isinstance(value, (int, float)):
                self.more()  # a number at the window's edge may go on
                continue
            self.pos = end
            return value, start, end


class _Walker:
    """Yields the records of one or more JSON documents read from `_Text`."""

    def __init__(self, text: _Text, records_path: str | None, first_position: int) -> None:
        self.t = text
        self.path = records_path
        self.parts = records_path.split(".") if records_path else []
        self.position = first_position

    def _emit(self, raw: str, record: Any) -> Parsed:
        item = (self.position, raw, record)
        self.position += 1
        return item

    def documents(self) -> Iterator[Parsed]:
        t = self.t
        try:
            while True:
                t.release()
                char = t.peek()
                if not char:
                    return
                if char == "[":
                    yield from self._array()
                elif char == "{" and self.parts:
                    yield from self._object(0)
                else:
                    value, start, end = t.value()
                    yield self._emit(t.buf[start:end], value)
        except (ParseError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ParseError) else "invalid JSON: nested too deeply"
            # pos is where the failing record (or token) starts: value() moves it on success only
            raw = t.buf[t.pos : t.pos + MAX_RAW] or t.buf[-2000:]
            yield self._emit(raw, ParseError(f"{reason}; the rest of the document is not read"))

    def _array(self) -> Iterator[Parsed]:
        t = self.t
        t.pos += 1  # "["
        first = True
        while True:
            char = t.peek()
            if char == "]":
                t.pos += 1
                return
            if not first:
                t.expect(",", "',' or ']' between records")
            first = False
            t.release()
            value, start, end = t.value()
            yield self._emit(t.buf[start:end], value)

    def _object(self, depth: int) -> Iterator[Parsed]:
        """An object on the records path: stream the records under it, or, if the path is
        not there, the object is itself one record."""
        t = self.t
        start = t.pos
        t.pos += 1  # "{"
        partial: dict[str, Any] = {}
        found = False
        first = True
        while True:
            if t.peek() == "}":
                t.pos += 1
                break
            if not first:
                t.expect(",", "',' or '}'")
            first = False
            if t.peek() != '"':
                t.expect('"', "a key")
            key, _, _ = t.value()
            t.expect(":", "':'")
            char = t.peek()
            if not found and key == self.parts[depth]:
                found = True
                last = depth == len(self.parts) - 1
                if last and char == "[":
                    yield from self._array()
                    continue
                if not last and char == "{":
                    yield from self._object(depth + 1)
                    continue
                value, vstart, vend = t.value()
                yield self._emit(
                    t.buf[vstart:vend][:MAX_RAW],
                    ParseError(
                        f"records path {self.path!r} holds {type(value).__name__}, not a list"
                    ),
                )
                continue
            value, _, _ = t.value()
            if not found:
                partial[key] = value
        if found:
            return
        if depth == 0:
            yield self._emit(t.buf[start : t.pos], partial)
        else:
            yield self._emit(
                t.buf[start : t.pos][:MAX_RAW],
                ParseError(f"records path {self.path!r} not found in the document"),
            )


def _looks_like_document(window: str, eof: bool) -> bool:
    """Whether the first JSON value spans lines (a pretty-printed or huge document) rather
    than being one line of NDJSON."""
    i = _WS.match(window).end()  # type: ignore[union-attr]
    if i >= len(window) or window[i] not in "{[":
        return False
    newline = window.find("\n", i)
    if newline == -1:
        return not eof  # one long line: stream it
    try:
        _, end = _DECODER.raw_decode(window, i)
    except json.JSONDecodeError as exc:
        if not eof and exc.pos >= len(window) - _EDGE:
            return True  # the first value goes on past the window: not one short line
        second_line = _WS.match(window, newline).end()  # type: ignore[union-attr]
        return exc.pos > second_line
    except RecursionError:
        return False
    return end > newline


WHOLE_DOCUMENT = 32 << 20  # characters: a document up to this size is split in one pass


_TYPED_DICT: Any = TypedDict  # called with a key known only at run time


@functools.cache
def _envelope(records_path: str) -> msgspec.json.Decoder:
    """A decoder of {"<path>": [...]} that gives each record as its raw JSON text."""
    shape: Any = list[msgspec.Raw]
    for i, part in enumerate(reversed(records_path.split("."))):
        shape = _TYPED_DICT(f"Envelope{i}", {part: shape})
    return msgspec.json.Decoder(shape)


def _whole_document(text: str, records_path: str | None) -> list[str] | None:
    """The raw texts of the records of `text` if it is one object holding a list at
    `records_path` (each key on the way written once); None for anything else, which the
    incremental reader then handles (and explains, where it is broken)."""
    if not records_path or len(text) > WHOLE_DOCUMENT:
        return None
    parts = records_path.split(".")
    if any(text.count(f'"{part}"') != 1 for part in parts):
        return None  # a repeated key: the reader takes the first, a decoder the last
    try:
        node: Any = _envelope(records_path).decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, list):
        return None
    return [bytes(raw).decode("utf-8") for raw in node]


def _records(texts: list[str], first_position: int, lazy: bool) -> Iterator[Parsed]:
    for i, text in enumerate(texts, first_position):
        yield i, text, UNDECODED if lazy else safely(decode_line, text)


def _lines_of_documents(
    stream: IO[bytes], records_path: str | None, lazy: bool
) -> Iterator[Parsed]:
    key = f'"{records_path.split(".")[0]}"' if records_path else None
    for n, text, err in lines(stream):
        if err is not None:
            yield n, text, err
        elif key and key in text and text.lstrip().startswith("{"):
            whole = _whole_document(text, records_path)
            if whole is not None:
                yield from _records(whole, n, lazy)
            else:
                yield from _Walker(_Text(None, text), records_path, n).documents()
        elif lazy:
            yield n, text, UNDECODED
        else:
            try:
                yield n, text, decode_line(text)
            except ParseError as exc:
                yield n, text, exc


def parse_json(stream: IO[bytes], ingest: Ingest, lazy: bool = False) -> Iterator[Parsed]:
    head = stream.read(_SNIFF).removeprefix(b"\xef\xbb\xbf")
    window = head.decode("utf-8", "replace")
    eof = len(head) < _SNIFF
    rest = prefixed(head, stream)
    if _looks_like_document(window, eof):
        if ingest.records_path:  # small enough to split in one pass?
            data = rest.read(WHOLE_DOCUMENT + 1)
            if len(data) <= WHOLE_DOCUMENT:
                text = data.decode("utf-8", "replace").removeprefix("\ufeff")
                whole = _whole_document(text, ingest.records_path)
                if whole is not None:
                    return _records(whole, 0, lazy)
                return _Walker(_Text(None, text), ingest.records_path, 0).documents()
            rest = prefixed(data, rest)
        return _Walker(_Text(rest), ingest.records_path, 0).documents()
    return _lines_of_documents(rest, ingest.records_path, lazy)
