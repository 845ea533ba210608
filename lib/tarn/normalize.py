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

That is the definition. Where a source ships a batch transform (logsources/columnar.py), the
records go through it SUB_BATCH at a time instead, with Arrow compute; every record it does
not take (or every record of a batch it fails on) goes through the steps above, and the rows
come out in record order either way. The result is the same; tests hold the two to that.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

import numpy as np
import pyarrow as pa

from tarn.logsources import LogSource, TableSpec
from tarn.logsources import columnar as columnar_
from tarn.logsources._parse import Parsed, ParseError, eager, parse
from tarn.logsources._schema import SIDELINE_SCHEMA
from tarn.logsources.helpers import dig, json_text, parse_ts, unique

__all__ = ["Chunk", "Row", "Sidelined", "normalize", "parse_ts", "rows"]

MAX_RAW_CHARS = 1 << 20  # a sidelined raw record is kept up to 1 MiB of text
SUB_BATCH = 4096  # rows turned into Arrow at a time: bounds the Python objects held
SUB_BATCH_CHARS = 16 << 20  # and at most this much raw text in one batch of records
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
        t = self._table(item.table)
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

    def _table(self, name: str) -> _TableRows:
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = _TableRows(self.source.table_specs[name])
        return t

    def _arrow(self, t: _TableRows) -> tuple[list[pa.RecordBatch], list[int]]:
        """The pending rows of `t` as Arrow and the positions of those that fit its schema;
        a row that does not fit is sidelined."""
        if not t.rows:
            return [], []
        schema = t.spec.schema
        try:
            batches = pa.Table.from_pylist(t.rows, schema=schema).to_batches()
            positions = [position for position, _ in t.raws]
        except _ARROW_ERRORS:
            # Rare path: find the rows whose values do not fit the schema, keep the rest.
            good, positions = [], []
            for row, (position, raw) in zip(t.rows, t.raws, strict=True):
                try:
                    pa.Table.from_pylist([row], schema=schema)
                    good.append(row)
                    positions.append(position)
                except _ARROW_ERRORS as exc:
                    self.sideline(
                        position,
                        "validate",
                        f"does not fit the schema of {t.spec.name}: {exc}",
                        raw,
                    )
            batches = pa.Table.from_pylist(good, schema=schema).to_batches() if good else []
        self.chars -= sum(len(raw) for _, raw in t.raws)
        t.rows, t.raws = [], []
        return batches, positions

    def _keep(self, t: _TableRows, batches: list[pa.RecordBatch]) -> None:
        t.batches.extend(batches)
        t.count += sum(b.num_rows for b in batches)
        self.arrow_bytes += sum(b.nbytes for b in batches)

    def _flush(self, t: _TableRows) -> None:
        self._keep(t, self._arrow(t)[0])

    def add_columnar(
        self, name: str, table: pa.Table, positions: list[int], rows: list[Row]
    ) -> None:
        """Rows a batch transform built, and the rows `transform` made for the other records
        of the same batch, merged in record order."""
        t = self._table(name)
        self._flush(t)  # rows added before this batch stay in front
        for item in rows:
            t.rows.append(item.row)
            t.raws.append((item.position, item.raw))
            self.chars += len(item.raw)
        slow, slow_positions = self._arrow(t)
        if slow_positions:
            merged = pa.concat_tables([table, pa.Table.from_batches(slow, schema=t.spec.schema)])
            order = np.argsort(np.asarray(positions + slow_positions), kind="stable")
            table = merged.take(pa.array(order))
        self.rows += table.num_rows
        self._keep(t, table.to_batches())

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
            if not paths:
                related[key] = unique(values) if values else []
                continue
            found = [values] if values is not None else []
            for path in paths:
                value = _at(row, path)
                if value is not None:
                    found.append(value)
            related[key] = unique(found)
        row["tarn"] = {
            "log_source": self.source.name,
            "table": spec.name,
            "ingest_id": self.ingest_id,
        }

    def parsed(self, stream: IO[bytes], lazy: bool = False) -> Iterator[Parsed]:
        """The parser's (position, raw, record) items; a stream that cannot be read to its
        end gives a last item at position -1 whose record is the ParseError saying why."""
        try:
            yield from parse(stream, self.source.ingest, lazy)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            # Corrupt compression or an unreadable stream: keep what was parsed, sideline the rest.
            yield -1, "", ParseError(f"unreadable object: {type(exc).__name__}: {exc}")
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                yield -1, "", ParseError(f"unreadable object: ZstdError: {exc}")
            else:
                yield -1, "", ParseError(f"parser failed: {type(exc).__name__}: {exc}")

    def items_of(self, position: int, raw: str, record: Any) -> Iterator[Row | Sidelined]:
        """The rows (or sideline items) `transform(record)` makes of one parsed record."""
        record = eager(record, raw)
        if isinstance(record, Exception):
            yield Sidelined(position, "parse", str(record), raw)
            return
        try:
            out = self.source.transform(record)
        except Exception as exc:  # a transform bug must not lose the rest of the object
            yield Sidelined(position, "transform", f"{type(exc).__name__}: {exc}", raw)
            return
        if out is None:
            return
        specs = self.source.table_specs
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

    def records(self, stream: IO[bytes]) -> Iterator[Row | Sidelined]:
        for position, raw, record in self.parsed(stream):
            yield from self.items_of(position, raw, record)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _at(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = row
    for key in path:
        if type(node) is not dict and not isinstance(node, dict):
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
    """The prepared rows and sideline items of one raw object, record by record through
    `transform(record)`: the definition that normalize()'s batch path must agree with."""
    return _Rows(source, ingest_id).records(stream)


COLUMNAR_MODES = ("auto", "off", "strict")


def normalize(
    stream: IO[bytes],
    source: LogSource,
    ingest_id: str,
    batch_records: int = 50_000,
    *,
    columnar: str = "auto",
) -> Iterator[Chunk]:
    """Yield chunks of at most about `batch_records` rows; the last one has `final=True`.

    Where the source has a batch transform (columnar.py), records go through it SUB_BATCH at
    a time; `columnar="off"` sends every record through `transform(record)` instead, and
    `"strict"` raises where the batch transform fails rather than falling back (tests).
    """
    if columnar not in COLUMNAR_MODES:
        raise ValueError(f"columnar must be one of {', '.join(COLUMNAR_MODES)}, not {columnar!r}")
    b = _Builder(source, ingest_id)
    r = _Rows(source, ingest_id)
    plan = source.columnar if columnar != "off" else None
    index = 0
    if plan is None:
        for item in r.records(stream):
            if isinstance(item, Sidelined):
                b.sideline(item.position, item.stage, item.reason, item.raw)
            else:
                b.add(item)
            if b.full(batch_records):
                yield b.build(index)
                index += 1
    else:
        batch = _Batcher(r, b, plan, strict=columnar == "strict")
        items = r.parsed(stream, lazy=True)
        limit = min(SUB_BATCH, batch_records)
        while True:
            with _no_gc():
                pending = _take(items, limit)
                if pending:
                    batch.run(pending)
            if not pending:
                break
            if b.full(batch_records):
                yield b.build(index)
                index += 1
            # a chunk ends between records: the next batch fills it at most
            limit = max(1, min(SUB_BATCH, batch_records - b.rows - len(b.sidelined)))
    last = b.build(index)
    last.final = True
    yield last


def _take(items: Iterator[Parsed], limit: int) -> list[Parsed]:
    """The next batch: `limit` items, or fewer if their raw text reaches SUB_BATCH_CHARS."""
    pending: list[Parsed] = []
    chars = 0
    for item in items:
        pending.append(item)
        chars += len(item[1])
        if len(pending) >= limit or chars >= SUB_BATCH_CHARS:
            break
    return pending


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is read and built: the thousands of
    objects decoded records are make it run again and again (about 40% of the batch path's
    time) and it finds nothing, as decoded records hold no cycles."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Batcher:
    """Runs a source's batch transform over parsed records; what it leaves, and every record
    of a batch it fails on, goes through transform(record)."""

    def __init__(
        self, r: _Rows, b: _Builder, plan: columnar_.ColumnarTransform, strict: bool
    ) -> None:
        self.r, self.b, self.plan, self.strict = r, b, plan, strict
        source = r.source
        self.targets = {
            name: columnar_.Target(
                name=name,
                suffix=spec.suffix,
                schema=spec.schema,
                leaves=spec.columns,
                related=spec.related,
                special={
                    **{".".join(p): "timestamp" for p in spec.timestamp_paths},
                    **{".".join(p): "date" for p in spec.date_paths},
                },
                constants={
                    "tarn.log_source": source.name,
                    "tarn.table": name,
                    "tarn.ingest_id": r.ingest_id,
                },
            )
            for name, spec in source.table_specs.items()
        }
        self.table_by = source.table_by
        self.table_map = (
            {value: source.table_name(suffix) for value, suffix in source.table_by.map}
            if source.table_by
            else {}
        )

    def _columns(self, items: list[Parsed]) -> tuple[columnar_.Assembly, list[int]]:
        """The batch transform's rows per table, and the indices of the items it leaves."""
        batch, kept = columnar_.read_records(
            self.plan, [record for _, _, record in items], [raw for _, raw, _ in items]
        )
        if not kept:  # no record reads as declared: nothing for the batch function
            return columnar_.Assembly([], np.array([], dtype=np.int64)), list(range(len(items)))
        tables: str | pa.Array | None = self.r.source.default_table
        if self.table_by is not None:
            tables = batch.table = columnar_.lookup(
                batch[self.table_by.field], self.table_map, None, pa.string()
            )
        done = columnar_.assemble(
            self.plan(batch),
            len(kept),
            self.targets,
            tables,
            [items[i][1] for i in kept] if self.r.source.keep_original else None,
        )
        at = np.asarray(kept, dtype=np.int64)  # batch index -> item index
        done.tables = [(name, table, at[rows]) for name, table, rows in done.tables]
        taken = {i for _, _, rows in done.tables for i in rows.tolist()}
        return done, [i for i in range(len(items)) if i not in taken]

    def run(self, items: list[Parsed]) -> None:
        try:
            done, rest = self._columns(items)
        except Exception as exc:
            if self.strict:
                raise
            columnar_.warn_once(self.r.source.name, exc)
            done, rest = (
                columnar_.Assembly([], np.array([], dtype=np.int64)),
                list(range(len(items))),
            )
        own: dict[str, list[Row]] = {}
        for i in rest:
            for item in self.r.items_of(*items[i]):
                if isinstance(item, Sidelined):
                    self.b.sideline(item.position, item.stage, item.reason, item.raw)
                else:
                    own.setdefault(item.table, []).append(item)
        fast = {name: (table, rows) for name, table, rows in done.tables}
        for name in [*fast, *(t for t in own if t not in fast)]:
            table, rows = fast.get(
                name, (self.targets[name].schema.empty_table(), np.array([], dtype=np.int64))
            )
            self.b.add_columnar(
                name, table, [items[i][0] for i in rows.tolist()], own.get(name, [])
            )
