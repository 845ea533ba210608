"""The transformer's work: raw object -> typed, ECS-shaped Arrow batches, and a sideline.

Good records always land; a record that fails to parse, transform or validate is kept in
the sideline with its stage, reason and raw text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import pyarrow as pa

from tarn.logsources import LogSource
from tarn.logsources._parse import parse
from tarn.logsources._schema import SIDELINE_SCHEMA

MAX_RAW_CHARS = 1 << 20  # a sidelined raw record is kept up to 1 MiB of text


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
class _Builder:
    source: LogSource
    ingest_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    raws: list[tuple[int, str]] = field(default_factory=list)
    sidelined: list[dict[str, Any]] = field(default_factory=list)

    def sideline(self, position: int, stage: str, reason: str, raw: str) -> None:
        self.sidelined.append(
            {
                "ts": datetime.now(UTC),
                "tarn": {
                    "log_source": self.source.name,
                    "table": self.source.table,
                    "ingest_id": self.ingest_id,
                },
                "stage": stage,
                "reason": reason[:2000],
                "raw": raw[:MAX_RAW_CHARS],
                "position": position,
            }
        )

    def build(self, index: int) -> Chunk:
        table = self._typed()
        chunk = Chunk(
            index=index,
            tables={self.source.table: table} if table.num_rows else {},
            sideline=pa.Table.from_pylist(self.sidelined, schema=SIDELINE_SCHEMA),
        )
        self.rows, self.raws, self.sidelined = [], [], []
        return chunk

    def _typed(self) -> pa.Table:
        schema = self.source.schema
        try:
            return pa.Table.from_pylist(self.rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        # Rare path: find the rows whose values do not fit the schema, keep the rest.
        good = []
        for row, (position, raw) in zip(self.rows, self.raws, strict=True):
            try:
                pa.Table.from_pylist([row], schema=schema)
                good.append(row)
            except (
                pa.ArrowInvalid,
                pa.ArrowTypeError,
                TypeError,
                ValueError,
                OverflowError,
            ) as exc:
                self.sideline(position, "validate", f"does not fit the schema: {exc}", raw)
        return pa.Table.from_pylist(good, schema=schema)


def parse_ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        ts = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    elif isinstance(value, str):
        ts = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"ts must be a time, got {type(value).__name__}")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _unique(values: list[Any] | None) -> list[str]:
    seen: dict[str, None] = {}
    for v in values or []:
        if v:
            seen.setdefault(str(v), None)
    return list(seen)


def normalize(
    stream: IO[bytes], source: LogSource, ingest_id: str, batch_records: int = 50_000
) -> Iterator[Chunk]:
    """Yield chunks of at most `batch_records` rows; the last one has `final=True`."""
    b = _Builder(source, ingest_id)
    index = 0
    try:
        items = parse(stream, source.format, source.records_path)
        for position, raw, record in items:
            if isinstance(record, Exception):
                b.sideline(position, "parse", str(record), raw)
                continue
            try:
                out = source.transform(record)
            except Exception as exc:  # a transform bug must not lose the rest of the object
                b.sideline(position, "transform", f"{type(exc).__name__}: {exc}", raw)
                continue
            for row in [] if out is None else out if isinstance(out, list) else [out]:
                try:
                    row["ts"] = parse_ts(row.get("ts"))
                except (ValueError, TypeError, OverflowError, OSError) as exc:
                    b.sideline(position, "validate", f"bad ts {row.get('ts')!r}: {exc}", raw)
                    continue
                if source.keep_original:
                    row.setdefault("event", {})["original"] = raw
                related = row.setdefault("related", {})
                for key in ("ip", "user", "hosts", "hash"):
                    related[key] = _unique(related.get(key))
                row["tarn"] = {
                    "log_source": source.name,
                    "table": source.table,
                    "ingest_id": ingest_id,
                }
                b.rows.append(row)
                b.raws.append((position, raw))
            if len(b.rows) >= batch_records:
                yield b.build(index)
                index += 1
    except (OSError, EOFError, UnicodeError) as exc:
        # Corrupt compression or an unreadable stream: keep what was parsed, sideline the rest.
        b.sideline(-1, "parse", f"unreadable object: {type(exc).__name__}: {exc}", "")
    last = b.build(index)
    last.final = True
    yield last
