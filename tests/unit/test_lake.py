import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from tarn import config
from tarn.lake import BATCH_PROPERTY, Lake

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event", pa.struct([pa.field("action", pa.string())])),
        pa.field("n", pa.int64()),
    ]
)


def batch(n: int, start: int = 0, schema: pa.Schema = SCHEMA) -> pa.Table:
    rows = [
        {"ts": datetime(2026, 11, 20, 1, tzinfo=UTC), "event": {"action": f"a{i % 3}"}, "n": i}
        for i in range(start, start + n)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture
def lake(clean_env) -> Lake:
    return Lake(config.load())


def test_commit_creates_a_day_partitioned_zstd_table(lake: Lake) -> None:
    result = lake.commit("t", batch(5), "b1")
    assert (result.rows, result.skipped) == (5, False)
    tbl = lake.load("t")
    assert [f.transform.__class__.__name__ for f in tbl.spec().fields] == ["DayTransform"]
    assert tbl.properties["write.parquet.compression-codec"] == "zstd"
    assert tbl.current_snapshot().summary.additional_properties[BATCH_PROPERTY] == "b1"
    assert lake.count("t") == 5


def test_a_batch_is_committed_once(lake: Lake) -> None:
    lake.commit("t", batch(5), "b1")
    again = lake.commit("t", batch(5), "b1")
    assert again.skipped
    lake.commit("t", batch(3), "b2")
    assert lake.count("t") == 8
    assert lake.scan_arrow("t").num_rows == 8
    assert lake.committed_batches(lake.load("t")) == {"b1", "b2"}


def test_the_same_batch_from_another_process_view_is_skipped(lake: Lake, clean_env) -> None:
    lake.commit("t", batch(4), "b1")
    other = Lake(config.load())  # a second writer with its own catalog connection
    assert other.commit("t", batch(4), "b1").skipped
    assert other.count("t") == 4


def test_concurrent_writers_lose_and_duplicate_nothing(lake: Lake, clean_env) -> None:
    lake.commit("t", batch(1, 10_000), "seed")
    writers = [Lake(config.load()) for _ in range(2)]
    errors = []

    def write(w: Lake, first: int) -> None:
        try:
            for i in range(first, first + 6):
                w.commit("t", batch(10, i * 10), f"batch-{i}")
                w.commit("t", batch(10, i * 10), f"batch-{i}")  # redelivery
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w, k * 6)) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = lake.scan_arrow("t")
    assert data.num_rows == 1 + 12 * 10
    assert len(set(data.column("n").to_pylist())) == data.num_rows


def test_new_columns_are_added_and_old_batches_read_as_null(lake: Lake) -> None:
    lake.commit("t", batch(2), "b1")
    wider = pa.schema(
        [
            pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field(
                "event",
                pa.struct([pa.field("action", pa.string()), pa.field("outcome", pa.string())]),
            ),
            pa.field("n", pa.int64()),
            pa.field("extra", pa.string()),
        ]
    )
    rows = [
        {
            "ts": datetime(2026, 11, 21, tzinfo=UTC),
            "event": {"action": "x", "outcome": "success"},
            "n": 99,
            "extra": "e",
        }
    ]
    lake.commit("t", pa.Table.from_pylist(rows, schema=wider), "b2")
    got = sorted(lake.scan_arrow("t").to_pylist(), key=lambda r: r["n"])
    assert got[0]["extra"] is None and got[0]["event"]["outcome"] is None
    assert got[-1]["extra"] == "e" and got[-1]["event"]["outcome"] == "success"
    # A later batch in the old, narrower shape still commits.
    assert not lake.commit("t", batch(1, 50), "b3").skipped
    assert lake.count("t") == 4


def test_upsert_replaces_rows_by_key(lake: Lake) -> None:
    schema = pa.schema(
        [
            pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("id", pa.string()),
            pa.field("v", pa.int64()),
        ]
    )
    ts = datetime(2026, 11, 20, tzinfo=UTC)
    lake.upsert_rows(
        "u",
        pa.Table.from_pylist(
            [{"ts": ts, "id": "a", "v": 1}, {"ts": ts, "id": "b", "v": 1}], schema=schema
        ),
        "id",
        schema,
    )
    lake.upsert_rows(
        "u", pa.Table.from_pylist([{"ts": ts, "id": "a", "v": 2}], schema=schema), "id", schema
    )
    assert sorted((r["id"], r["v"]) for r in lake.scan_arrow("u").to_pylist()) == [
        ("a", 2),
        ("b", 1),
    ]


def test_concurrent_commits_in_one_process_share_snapshots(lake: Lake) -> None:
    lake.commit("t", batch(1, 999), "seed")
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        lake.commit("t", batch(5, i * 5), f"g{i}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tbl = lake.load("t")
    assert lake.count("t") == 41
    assert lake.committed_batches(tbl) == {"seed", *(f"g{i}" for i in range(8))}
    appends = [
        s for s in tbl.metadata.snapshots if s.summary and s.summary.operation.value == "append"
    ]
    assert len(appends) < 9  # at least two of the eight batches went into one snapshot
