from datetime import UTC, datetime, timedelta

import pyarrow as pa

from tarn import config, maintenance
from tarn.lake import Lake

SCHEMA = pa.schema(
    [pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False), pa.field("n", pa.int64())]
)


def test_compaction_keeps_rows_and_batch_history_and_cuts_files(clean_env) -> None:
    lake = Lake(config.load())
    for b in range(10):
        rows = [
            {"ts": datetime(2026, 11, 20, b, tzinfo=UTC), "n": b},
            {"ts": datetime(2026, 11, 21, b, tzinfo=UTC), "n": 100 + b},
        ]
        lake.commit("t", pa.Table.from_pylist(rows, schema=SCHEMA), f"b{b}")
    assert sum(maintenance._day_files(lake, "t").values()) == 20
    (report,) = maintenance.run(lake, retention_days=365, min_files=8)
    assert (
        report.files_before,
        report.files_after,
        report.partitions_compacted,
        report.snapshots_expired,
    ) == (20, 2, 2, 0)
    assert sorted(r["n"] for r in lake.scan_arrow("t").to_pylist()) == [
        *range(10),
        *range(100, 110),
    ]
    # Within retention, a redelivered batch is still recognised after compaction.
    assert lake.commit(
        "t",
        pa.Table.from_pylist([{"ts": datetime(2026, 11, 20, tzinfo=UTC), "n": 0}], schema=SCHEMA),
        "b3",
    ).skipped


def test_expiry_drops_old_snapshots_but_keeps_the_newest(clean_env) -> None:
    lake = Lake(config.load())
    for b in range(15):
        lake.commit(
            "t",
            pa.Table.from_pylist(
                [{"ts": datetime(2026, 11, 20, tzinfo=UTC), "n": b}], schema=SCHEMA
            ),
            f"b{b}",
        )
    expired = maintenance.expire(lake, "t", datetime.now(UTC) + timedelta(seconds=1), keep_last=10)
    tbl = lake.load("t")
    assert expired == 5 and len(tbl.metadata.snapshots) == 10
    assert lake.count("t") == 15 and lake.scan_arrow("t").num_rows == 15
