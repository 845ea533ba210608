"""Lake maintenance: compact small files and expire old snapshots, so users need not.

Retention keeps every snapshot younger than the broker can still redeliver an event
(nats.max_age_days + 1 by default): the batch ids in those snapshots' summaries are what keep a
redelivered batch from landing twice.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyiceberg.exceptions import CommitFailedException

from tarn.lake import COMMIT_ATTEMPTS, Lake

log = logging.getLogger("tarn.maintenance")


@dataclass
class TableReport:
    table: str
    files_before: int
    files_after: int
    partitions_compacted: int
    snapshots_expired: int


def _day_files(lake: Lake, table: str) -> dict[datetime, int]:
    """Data files per day of `ts` in the current snapshot."""
    files = lake.load(table).inspect.files().select(["lower_bounds", "file_path"]).to_pylist()
    tbl = lake.load(table)
    ts_id = tbl.schema().find_field("ts").field_id
    per_day: dict[datetime, int] = {}
    for f in files:
        bounds = dict(f["lower_bounds"] or [])
        raw = bounds.get(ts_id)
        if raw is None:
            continue
        micros = int.from_bytes(raw, "little", signed=True)
        day = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
        key = day.replace(hour=0, minute=0, second=0, microsecond=0)
        per_day[key] = per_day.get(key, 0) + 1
    return per_day


def compact(lake: Lake, table: str, min_files: int = 8) -> int:
    """Rewrite each day partition holding `min_files` or more files as one file set."""
    done = 0
    for day, count in sorted(_day_files(lake, table).items()):
        if count < min_files:
            continue
        # pyiceberg parses this into ts >= day AND ts < next day, bound to the column's type
        flt = f"ts >= '{day.isoformat()}' AND ts < '{(day + timedelta(days=1)).isoformat()}'"
        for attempt in range(COMMIT_ATTEMPTS):
            tbl = lake.load(table)
            rows = tbl.scan(row_filter=flt).to_arrow()
            rows = rows.sort_by([("ts", "ascending")]) if rows.num_rows else rows
            try:
                # The same rows, fewer files: a concurrent append makes this commit fail and retry.
                tbl.overwrite(
                    rows,
                    overwrite_filter=flt,
                    snapshot_properties={"tarn.maintenance": "compaction"},
                )
                done += 1
                break
            except CommitFailedException:
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    return done


def expire(lake: Lake, table: str, older_than: datetime, keep_last: int = 10) -> int:
    tbl = lake.load(table)
    snaps = sorted(tbl.metadata.snapshots, key=lambda s: s.timestamp_ms)
    keep = {s.snapshot_id for s in snaps[-keep_last:]}
    cutoff = int(older_than.timestamp() * 1000)
    ids = [s.snapshot_id for s in snaps if s.timestamp_ms < cutoff and s.snapshot_id not in keep]
    current = tbl.current_snapshot()
    ids = [i for i in ids if current is None or i != current.snapshot_id]
    if ids:
        tbl.maintenance.expire_snapshots().by_ids(ids).commit()
    return len(ids)


def run(lake: Lake, retention_days: float | None = None, min_files: int = 8) -> list[TableReport]:
    days = retention_days if retention_days is not None else lake.cfg.nats.max_age_days + 1
    older_than = datetime.now(UTC) - timedelta(days=days)
    reports = []
    for table in lake.table_names():
        before = sum(_day_files(lake, table).values())
        compacted = compact(lake, table, min_files)
        expired = expire(lake, table, older_than)
        after = sum(_day_files(lake, table).values())
        reports.append(TableReport(table, before, after, compacted, expired))
    return reports


__all__ = ["TableReport", "compact", "expire", "run"]
