"""The Iceberg lake: catalog, tables, and idempotent commits.

Every commit carries the batch it contains in its snapshot summary (`tarn.batch-id`), and a
batch that is already in a table's history is skipped: a redelivered batch is never
committed twice, whichever process committed it first.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform

from tarn._failpoints import failpoint
from tarn.config import Config
from tarn.storage import s3_fileio_properties

log = logging.getLogger(__name__)

BATCH_PROPERTY = "tarn.batch-id"
SIDELINE_TABLE = "tarn_sideline"
ALERTS_TABLE = "tarn_alerts"
TABLE_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
    # pyiceberg's own retry re-applies an append after a conflict without asking whether the
    # batch is still needed; tarn retries itself, checking the batch ids first.
    "commit.retry.num-retries": "0",
}
COMMIT_ATTEMPTS = 20


def open_catalog(cfg: Config) -> Catalog:
    if cfg.catalog_uri.startswith("sqlite:///"):
        from pathlib import Path

        Path(cfg.catalog_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if cfg.warehouse.startswith("file://"):
        from pathlib import Path
        from urllib.parse import urlparse

        Path(urlparse(cfg.warehouse).path).mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        cfg.catalog.name, uri=cfg.catalog_uri, warehouse=cfg.warehouse, **s3_fileio_properties(cfg)
    )
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(cfg.catalog.namespace)
    return catalog


@dataclass
class CommitResult:
    table: str
    rows: int
    skipped: bool
    snapshot_id: int | None


@dataclass(eq=False)
class _Pending:
    key: str
    data: pa.Table
    done: Future[Any] = field(default_factory=Future)


class _Group:
    """Group commit: the first caller commits for everyone queued behind it, then the next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False

    def submit(self, item: _Pending, commit: Callable[[list[_Pending]], list[Any]]) -> Any:
        with self._lock:
            self._queue.append(item)
            lead = not self._busy
            self._busy = True
        if lead:
            while True:
                with self._lock:
                    group, self._queue = self._queue, []
                    if not group:
                        self._busy = False
                        break
                try:
                    for p, result in zip(group, commit(group), strict=True):
                        p.done.set_result(result)
                except Exception as exc:
                    for p in group:
                        if not p.done.done():
                            p.done.set_exception(exc)
        return item.done.result()


class Lake:
    """One catalog namespace of tarn tables. Safe to share between threads of one process."""

    def __init__(self, cfg: Config, catalog: Catalog | None = None) -> None:
        self.cfg = cfg
        self.namespace = cfg.catalog.namespace
        self.catalog = catalog or open_catalog(cfg)
        self._groups: dict[str, _Group] = {}
        self._groups_lock = threading.Lock()

    def ident(self, table: str) -> str:
        return f"{self.namespace}.{table}"

    def table_names(self) -> list[str]:
        return sorted(name for _, name in self.catalog.list_tables(self.namespace))

    def load(self, table: str) -> Table:
        return self.catalog.load_table(self.ident(table))

    def ensure_table(self, table: str, schema: pa.Schema, partition_field: str = "ts") -> Table:
        """Load the table, creating it (partitioned by day of `ts`) or adding new columns."""
        try:
            tbl = self.load(table)
        except NoSuchTableError:
            try:
                tbl = self.catalog.create_table(
                    self.ident(table), schema=schema, properties=TABLE_PROPERTIES
                )
                with tbl.update_spec() as spec:
                    spec.add_field(partition_field, DayTransform(), f"{partition_field}_day")
            except TableAlreadyExistsError:
                tbl = self.load(table)
            return tbl
        if tbl.properties.get("commit.retry.num-retries") != "0":
            with contextlib.suppress(CommitFailedException), tbl.transaction() as tx:
                tx.set_properties({"commit.retry.num-retries": "0"})
            tbl.refresh()
        return self._evolve(tbl, schema)

    def _evolve(self, tbl: Table, schema: pa.Schema) -> Table:
        current = tbl.schema().as_arrow()
        if _missing_columns(current, schema):
            for _ in range(COMMIT_ATTEMPTS):
                try:
                    with tbl.update_schema() as update:
                        update.union_by_name(schema)
                    break
                except CommitFailedException:
                    tbl.refresh()
        return tbl

    def committed_batches(self, tbl: Table) -> set[str]:
        out: set[str] = set()
        for snap in tbl.metadata.snapshots:
            if snap.summary is not None and (
                ids := snap.summary.additional_properties.get(BATCH_PROPERTY)
            ):
                out.update(ids.split(","))
        return out

    def _group(self, table: str) -> _Group:
        with self._groups_lock:
            return self._groups.setdefault(table, _Group())

    def commit(self, table: str, data: pa.Table, batch_id: str) -> CommitResult:
        """Append `data` tagged with `batch_id`, unless that batch is already in the table.

        Concurrent calls in one process share one snapshot (group commit): the Iceberg commit
        rate stops bounding the batch rate.
        """
        return self._group(table).submit(
            _Pending(batch_id, data), lambda g: self._append_group(table, g)
        )

    def _append_group(self, table: str, group: list[_Pending]) -> list[CommitResult]:
        tbl = self.ensure_table(table, group[0].data.schema)
        for schema in {id(p.data.schema): p.data.schema for p in group[1:]}.values():
            tbl = self._evolve(tbl, schema)
        for attempt in range(COMMIT_ATTEMPTS):
            done = self.committed_batches(tbl)
            todo: dict[str, _Pending] = {}
            for p in group:
                if p.key not in done:
                    todo.setdefault(p.key, p)
            if todo:
                try:
                    data = pa.concat_tables([_conform(p.data, tbl) for p in todo.values()])
                    tx = tbl.transaction()
                    tx.append(data, snapshot_properties={BATCH_PROPERTY: ",".join(todo)})
                    failpoint("lake_writer.before_commit")  # data files written, not committed
                    tx.commit_transaction()
                except CommitFailedException:
                    # Another writer committed first: reload and check again what is still needed.
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                    tbl.refresh()
                    continue
            snap = tbl.current_snapshot()
            written = {id(p) for p in todo.values()}
            return [
                CommitResult(
                    table, p.data.num_rows, id(p) not in written, snap.snapshot_id if snap else None
                )
                for p in group
            ]
        raise CommitFailedException(f"{table}: gave up after {COMMIT_ATTEMPTS} conflicting commits")

    def upsert_rows(
        self, table: str, data: pa.Table, key: str, schema: pa.Schema, version: str | None = None
    ) -> None:
        """Replace the rows whose `key` is in `data` (copy-on-write overwrite).

        Concurrent calls in one process share one snapshot. With `version`, a row never replaces
        a stored row of a higher version (late or reordered deliveries cannot roll back).
        """
        self._group(table).submit(
            _Pending(key, data), lambda g: self._upsert_group(table, g, key, schema, version)
        )

    def _upsert_group(
        self, table: str, group: list[_Pending], key: str, schema: pa.Schema, version: str | None
    ) -> list[None]:
        from pyiceberg.expressions import In

        tbl = self.ensure_table(table, schema)
        incoming: dict[Any, dict[str, Any]] = {}
        for p in group:
            for row in p.data.to_pylist():
                old = incoming.get(row[key])
                if old is None or version is None or row[version] >= old[version]:
                    incoming[row[key]] = row
        for attempt in range(COMMIT_ATTEMPTS):
            rows = dict(incoming)
            flt: BooleanExpression = In(key, [k for k in rows if k is not None])  # type: ignore[call-arg, arg-type]
            if version is not None:
                stored = (
                    tbl.scan(row_filter=flt, selected_fields=(key, version)).to_arrow().to_pylist()
                )
                for row in stored:
                    if row[key] in rows and rows[row[key]][version] < row[version]:
                        del rows[row[key]]
                if not rows:
                    return [None for _ in group]
                flt = In(key, [k for k in rows if k is not None])  # type: ignore[call-arg, arg-type]
            try:
                data = _conform(
                    pa.Table.from_pylist(list(rows.values()), schema=group[0].data.schema), tbl
                )
                with warnings.catch_warnings():
                    # A first version of a row has nothing to replace; that is expected.
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    tbl.overwrite(data, overwrite_filter=flt)
                return [None for _ in group]
            except CommitFailedException:
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                tbl.refresh()
        raise CommitFailedException(f"{table}: gave up after {COMMIT_ATTEMPTS} conflicting commits")

    def scan_arrow(
        self, table: str, row_filter: str | BooleanExpression = "True", **kw: Any
    ) -> pa.Table:
        return self.load(table).scan(row_filter=row_filter, **kw).to_arrow()

    def count(self, table: str) -> int:
        try:
            tbl = self.load(table)
        except NoSuchTableError:
            return 0
        snap = tbl.current_snapshot()
        if snap is None or snap.summary is None:
            return 0
        return int(snap.summary.additional_properties.get("total-records", 0))


def _missing_columns(current: pa.Schema, wanted: pa.Schema) -> bool:
    for f in wanted:
        idx = current.get_field_index(f.name)
        if idx < 0:
            return True
        have = current.field(idx).type
        nested = pa.types.is_struct(f.type) and pa.types.is_struct(have)
        if nested and _missing_columns(pa.schema(list(have)), pa.schema(list(f.type))):
            return True
    return False


def _conform(data: pa.Table, tbl: Table) -> pa.Table:
    """Cast the batch to the table's (possibly wider) schema: missing columns become nulls."""
    target = tbl.schema().as_arrow()
    if data.schema.equals(target, check_metadata=False):
        return data
    columns = []
    for f in target:
        if f.name in data.column_names:
            columns.append(_cast(data.column(f.name), f.type))
        else:
            columns.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=target)


def _cast(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    if col.type.equals(typ):
        return col
    if pa.types.is_struct(typ) and pa.types.is_struct(col.type):
        arr = col.combine_chunks()
        names = [col.type.field(i).name for i in range(col.type.num_fields)]
        children = []
        for i in range(typ.num_fields):
            f = typ.field(i)
            if f.name in names:
                children.append(
                    _cast(pa.chunked_array([arr.field(f.name)]), f.type).combine_chunks()
                )
            else:
                children.append(pa.nulls(len(arr), f.type))
        return pa.chunked_array(
            [pa.StructArray.from_arrays(children, fields=list(typ), mask=arr.is_null())]
        )
    return col.cast(typ)
