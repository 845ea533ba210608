"""The transformer's work: raw object -> typed, ECS-shaped Arrow batches, and a sideline.

Good records always land; a record that fails to parse, transform or validate is kept in
the sideline with its stage, reason and raw text. Per record:

1. parse (the source's ingest format) -> record, or sideline stage `parse`;
2. `transform(record)` -> zero or more rows, or sideline stage `transform` if it raises;
3. per row, stage `validate`: the table (`_table` set by the transform, else `table_by`, else
   the default table), `ts` (required), other timestamp/date/json columns coerced (ISO text or
   epoch for times; any value for json, dumped as compact JSON), `event.original` (where kept),
   `related.*` filled from the row's ECS fields, `tarn.*`; then the row must fit the table's
   Arrow schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

import pyarrow as pa

from tarn.logsources import LogSource, TableSpec
from tarn.logsources._parse import parse
from tarn.logsources._schema import SIDELINE_SCHEMA
from tarn.logsources.helpers import dig, json_text, parse_ts, unique

__all__ = ["Chunk", "Row", "Sidelined", "normalize", "parse_ts", "rows"]

MAX_RAW_CHARS = 1 << 20  # a sidelined raw record is kept up to 1 MiB of text
SUB_BATCH = 4096  # rows turned into Arrow at a time: bounds the Python objects held
# A chunk is also cut at this much Arrow data (or raw text not yet in Arrow), whatever
# batch_records says: the caller may hold one chunk while the next one is built.
MAX_CHUNK_BYTES = 64 << 20
RELATED = ("ip", "user", "hosts", "hash")
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


@dataclass
class Chunk:
    index: int
    tables: dict[str, pa.Table]
    sideline: pa.Table
    final: bool = False

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


@dataclass
class Row:
    table: str
    row: dict[str, Any]
    position: int
    raw: str


@dataclass
class Sidelined:
    position: int
    stage: str
    reason: str
    raw: str


class _Reject(Exception):
    """A row that cannot land; the message is the sideline reason."""


def _clean(text: str, limit: int) -> str:
    text = text[:limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from JSON escapes) cannot go into Arrow
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


@dataclass
class _TableRows:
    spec: TableSpec
    rows: list[dict[str, Any]] = field(default_factory=list)
    raws: list[tuple[int, str]] = field(default_factory=list)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    count: int = 0


@dataclass
class _Builder:
    source: LogSource
    ingest_id: str
    tables: dict[str, _TableRows] = field(default_factory=dict)
    sidelined: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    chars: int = 0  # raw text held as Python objects (pending rows, sidelined records)
    arrow_bytes: int = 0

    def sideline(self, position: int, stage: str, reason: str, raw: str) -> None:
        raw = _clean(raw, MAX_RAW_CHARS)
        self.sidelined.append(
            {
                "ts": datetime.now(UTC),
                "tarn": {
                    "log_source": self.source.name,
                    "table": self.source.table,
                    "ingest_id": self.ingest_id,
                },
                "stage": stage,
                "reason": _clean(reason, 2000),
                "raw": raw,
                "position": position,
            }
        )
        self.chars += len(raw)

    def add(self, item: Row) -> None:
        t = self.tables.get(item.table)
        if t is None:
            t = self.tables[item.table] = _TableRows(self.source.table_specs[item.table])
        t.rows.append(item.row)
        t.raws.append((item.position, item.raw))
        self.rows += 1
        self.chars += len(item.raw)
        if len(t.rows) >= SUB_BATCH:
            self._flush(t)

    def full(self, batch_records: int) -> bool:
        return (
            self.rows + len(self.sidelined) >= batch_records
            or self.chars >= MAX_CHUNK_BYTES
            or self.arrow_bytes >= MAX_CHUNK_BYTES
        )

    def _flush(self, t: _TableRows) -> None:
        if not t.rows:
            return
        schema = t.spec.schema
        before = len(t.batches)
        try:
            t.batches.extend(pa.Table.from_pylist(t.rows, schema=schema).to_batches())
            t.count += len(t.rows)
        except _ARROW_ERRORS:
            # Rare path: find the rows whose values do not fit the schema, keep the rest.
            good = []
            for row, (position, raw) in zip(t.rows, t.raws, strict=True):
                try:
                    pa.Table.from_pylist([row], schema=schema)
                    good.append(row)
                except _ARROW_ERRORS as exc:
                    self.sideline(
                        position,
                        "validate",
                        f"does not fit the schema of {t.spec.name}: {exc}",
                        raw,
                    )
            if good:
                t.batches.extend(pa.Table.from_pylist(good, schema=schema).to_batches())
                t.count += len(good)
        self.chars -= sum(len(raw) for _, raw in t.raws)
        self.arrow_bytes += sum(b.nbytes for b in t.batches[before:])
        t.rows, t.raws = [], []

    def build(self, index: int) -> Chunk:
        out: dict[str, pa.Table] = {}
        for name, t in self.tables.items():
            self._flush(t)
            if t.count:
                out[name] = pa.Table.from_batches(t.batches, schema=t.spec.schema)
        chunk = Chunk(
            index=index,
            tables=out,
            sideline=pa.Table.from_pylist(self.sidelined, schema=SIDELINE_SCHEMA),
        )
        self.tables, self.sidelined = {}, []
        self.rows = self.chars = self.arrow_bytes = 0
        return chunk


class _Rows:
    """Turns parsed records into routed, prepared rows (or sideline items) for one source."""

    def __init__(self, source: LogSource, ingest_id: str) -> None:
        self.source = source
        self.ingest_id = ingest_id
        self.by_suffix = {s.suffix: n for n, s in source.table_specs.items() if s.suffix}
        self.table_by = source.table_by
        self.table_map = source.table_by.lookup() if source.table_by else {}

    def table_of(self, row: dict[str, Any], record: Any) -> str:
        specs = self.source.table_specs
        if "_table" in row:
            wanted = row.pop("_table")
            name = self.by_suffix.get(wanted) if isinstance(wanted, str) else None
            if name is None and isinstance(wanted, str) and wanted in specs:
                name = wanted
            if name is None:
                known = ", ".join(sorted(self.by_suffix)) or "none"
                raise _Reject(
                    f"the transform chose table {wanted!r}, which {self.source.name} does not "
                    f"declare (table suffixes: {known}); add tables/<suffix>.yml"
                )
            return name
        if self.table_by is not None:
            key = self.table_by.field
            value = record.get(key) if isinstance(record, dict) else None
            if value is None and isinstance(record, dict) and "." in key:
                value = dig(record, key)
            if value is None or isinstance(value, (dict, list)):
                raise _Reject(f"table_by: the record has no value for {key!r} to choose its table")
            suffix = self.table_map.get(str(value))
            if suffix is None:
                raise _Reject(
                    f"table_by: {key}={str(value)[:200]!r} is not in table_by.map "
                    f"(mapped: {', '.join(sorted(self.table_map))}); add it to map a table"
                )
            return f"{self.source.name}_{suffix}"
        if self.source.default_table is not None:
            return self.source.default_table
        raise _Reject(
            f"{self.source.name} has no default table: the transform must set `_table` or "
            "log_source.yml must give `table_by`"
        )

    def prepare(self, row: dict[str, Any], spec: TableSpec, raw: str) -> None:
        try:
            row["ts"] = parse_ts(row.get("ts"))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise _Reject(f"bad ts {_short(row.get('ts'))}: {exc}") from None
        for path in spec.timestamp_paths:
            _coerce(row, path, _to_timestamp)
        for path in spec.date_paths:
            _coerce(row, path, _to_date)
        for path in spec.json_paths:
            _coerce(row, path, _to_json)
        if self.source.keep_original:
            event = row.get("event")
            if event is None:
                row["event"] = {"original": raw}
            elif isinstance(event, dict):
                if event.get("original") is None:
                    event["original"] = raw
            else:
                raise _Reject(f"`event` must be a mapping, got {type(event).__name__}")
        related = row.get("related")
        if related is None:
            related = row["related"] = {}
        elif not isinstance(related, dict):
            raise _Reject(f"`related` must be a mapping, got {type(related).__name__}")
        for key in RELATED:
            values = related.get(key)
            paths = spec.related[key]
            if not paths and not values:
                related[key] = []
                continue
            related[key] = unique([values, *(_at(row, p) for p in paths)] if paths else values)
        row["tarn"] = {
            "log_source": self.source.name,
            "table": spec.name,
            "ingest_id": self.ingest_id,
        }

    def records(self, stream: IO[bytes]) -> Iterator[Row | Sidelined]:
        transform = self.source.transform
        specs = self.source.table_specs
        try:
            for position, raw, record in parse(stream, self.source.ingest):
                if isinstance(record, Exception):
                    yield Sidelined(position, "parse", str(record), raw)
                    continue
                try:
                    out = transform(record)
                except Exception as exc:  # a transform bug must not lose the rest of the object
                    yield Sidelined(position, "transform", f"{type(exc).__name__}: {exc}", raw)
                    continue
                if out is None:
                    continue
                for row in out if isinstance(out, (list, tuple)) else [out]:
                    if not isinstance(row, dict):
                        yield Sidelined(
                            position,
                            "validate",
                            f"the transform returned {type(row).__name__}; return a dict, a list of dicts or None",
                            raw,
                        )
                        continue
                    try:
                        table = self.table_of(row, record)
                        self.prepare(row, specs[table], raw)
                    except _Reject as exc:
                        yield Sidelined(position, "validate", str(exc), raw)
                        continue
                    except Exception as exc:
                        yield Sidelined(position, "validate", f"{type(exc).__name__}: {exc}", raw)
                        continue
                    yield Row(table, row, position, raw)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            # Corrupt compression or an unreadable stream: keep what was parsed, sideline the rest.
            yield Sidelined(-1, "parse", f"unreadable object: {type(exc).__name__}: {exc}", "")
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                yield Sidelined(-1, "parse", f"unreadable object: ZstdError: {exc}", "")
            else:
                yield Sidelined(-1, "parse", f"parser failed: {type(exc).__name__}: {exc}", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _at(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = row
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _coerce(row: dict[str, Any], path: tuple[str, ...], fn: Any) -> None:
    node: Any = row
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if not isinstance(node, dict):
        return
    value = node.get(path[-1])
    if value is None:
        return
    try:
        node[path[-1]] = fn(value)
    except (ValueError, TypeError, OverflowError, OSError, RecursionError) as exc:
        raise _Reject(f"{'.'.join(path)}: {exc}") from None


def _to_timestamp(value: Any) -> datetime:
    return parse_ts(value)


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10])
    raise ValueError(f"not a date: {value!r}")


def _to_json(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)  # type: ignore[return-value]


def rows(stream: IO[bytes], source: LogSource, ingest_id: str) -> Iterator[Row | Sidelined]:
    """The prepared rows and sideline items of one raw object, before they become Arrow."""
    return _Rows(source, ingest_id).records(stream)


def normalize(
    stream: IO[bytes], source: LogSource, ingest_id: str, batch_records: int = 50_000
) -> Iterator[Chunk]:
    """Yield chunks of at most `batch_records` rows; the last one has `final=True`."""
    b = _Builder(source, ingest_id)
    index = 0
    for item in rows(stream, source, ingest_id):
        if isinstance(item, Sidelined):
            b.sideline(item.position, item.stage, item.reason, item.raw)
        else:
            b.add(item)
        if b.full(batch_records):
            yield b.build(index)
            index += 1
    last = b.build(index)
    last.final = True
    yield last
