"""`make bench`: end-to-end throughput and ingest-to-alert latency on the embedded stack,
and the transformer's single-core rate. Figures go to bench/results.json; nothing here
asserts a time: targets are read from the JSON, not enforced by tests."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import statistics
import threading
import time

import pytest
from tests.conftest import SAMPLES
from tests.integration.conftest import Stack, stack  # noqa: F401 - the fixture

from tarn import logsources, watch
from tarn.cli import post_ingest
from tarn.normalize import normalize

pytestmark = pytest.mark.benchmark


def sample_records() -> list[dict]:
    records = []
    for path in sorted(SAMPLES.glob("*.json.gz")):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    return records


def synthetic(n: int, tag: str) -> list[dict]:
    base = [r for r in sample_records() if r.get("userIdentity", {}).get("type") != "Root"]
    return [{**base[i % len(base)], "eventID": f"{tag}-{i}"} for i in range(n)]


def test_transformer_single_core_rate(record_result) -> None:
    import pyarrow.json as paj

    records = synthetic(60_000, "tr")
    ndjson = ("\n".join(json.dumps(r) for r in records) + "\n").encode()
    source = logsources.get("aws_cloudtrail")
    t0 = time.perf_counter()
    rows = sum(c.rows for c in normalize(io.BytesIO(ndjson), source, "bench", 50_000))
    tarn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    paj.read_json(
        io.BytesIO(ndjson), read_options=paj.ReadOptions(use_threads=False, block_size=1 << 24)
    )
    arrow_s = time.perf_counter() - t0
    mb = len(ndjson) / 1e6
    record_result(
        "transformer_aws_cloudtrail",
        {
            "records": rows,
            "megabytes": round(mb, 1),
            "events_per_s": round(rows / tarn_s),
            "mb_per_s": round(mb / tarn_s, 2),
            "pyarrow_read_json_mb_per_s": round(mb / arrow_s, 2),
            "ratio_to_pyarrow": round(arrow_s / tarn_s, 3),
        },
    )


def test_end_to_end_throughput(stack: Stack, record_result) -> None:  # noqa: F811
    posts, per_post = 20, 5_000
    bodies = [json.dumps({"Records": synthetic(per_post, f"tp{p}")}).encode() for p in range(posts)]
    start_seq = asyncio.run(watch.stream_position(stack.cfg))
    t0 = time.time()
    ids = [post_ingest(stack.cfg, "aws_cloudtrail", io.BytesIO(b))["ingest_id"] for b in bodies]
    posted = time.time()
    progress = asyncio.run(watch.wait_for_ingests(stack.cfg, ids, start_seq, timeout=900))
    committed = max(p.committed_at or time.time() for p in progress.values())
    total = sum(p.good for p in progress.values())
    assert total == posts * per_post
    stack.idle(timeout=600)  # let alerts from this load drain before the next benchmark
    record_result(
        "e2e_throughput",
        {
            "records": total,
            "posts": posts,
            "post_seconds": round(posted - t0, 2),
            "seconds_to_committed": round(committed - t0, 2),
            "events_per_s": round(total / (committed - t0)),
        },
    )


def test_ingest_to_alert_latency(stack: Stack, record_result) -> None:  # noqa: F811
    """Steady load: 4 small posts a second, each with one root login for a new account."""
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    def on_alert(item) -> None:
        with lock:
            arrived.setdefault(item.body["alert"]["dedupe"], time.time())

    stack.receiver.on_alert = on_alert
    filler = synthetic(49, "lat")
    sent: dict[str, float] = {}
    n, interval = 120, 0.25
    for i in range(n):
        account = f"{900000000000 + i}"
        root = {**sample_records()[0], "eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com",
                "userIdentity": {"type": "Root", "principalId": account}, "recipientAccountId": account,
                "responseElements": {"ConsoleLogin": "Success"}, "errorCode": None, "eventID": f"lat-root-{i}"}  # fmt: skip
        body = json.dumps({"Records": [*filler, root]}).encode()
        sent[account] = time.time()
        post_ingest(stack.cfg, "aws_cloudtrail", io.BytesIO(body))
        time.sleep(max(0.0, interval - (time.time() - sent[account])))
    deadline = time.time() + 120
    while len(arrived) < n and time.time() < deadline:
        time.sleep(0.2)
    latencies = sorted(arrived[a] - sent[a] for a in sent if a in arrived)
    assert len(latencies) == n, f"only {len(latencies)} of {n} alerts arrived"
    record_result(
        "ingest_to_alert_latency",
        {
            "alerts": n,
            "rate_per_s": round(1 / interval, 1),
            "records_per_post": len(filler) + 1,
            "p50_s": round(statistics.median(latencies), 3),
            "p99_s": round(latencies[min(n - 1, int(n * 0.99))], 3),
            "max_s": round(latencies[-1], 3),
        },
    )


def test_detector_throughput(record_result) -> None:
    """Every enabled built-in detection on every record of each table the samples fill."""
    from tarn.detection import Detector, detection_dirs, load_all

    detector = Detector(load_all(detection_dirs(None)))
    source = logsources.get("aws_cloudtrail")
    ndjson = ("\n".join(json.dumps(r) for r in synthetic(50_000, "det")) + "\n").encode()
    chunks = normalize(io.BytesIO(ndjson), source, "bench", 50_000)
    rows = [
        r
        for c in chunks
        if "aws_cloudtrail" in c.tables
        for r in c.tables["aws_cloudtrail"].to_pylist()
    ]
    t0 = time.perf_counter()
    result = detector.run("aws_cloudtrail", rows)
    elapsed = time.perf_counter() - t0
    assert result.errors == {}
    record_result(
        "detector_aws_cloudtrail",
        {
            "records": result.records,
            "detections": len(detector.by_table.get("aws_cloudtrail", [])),
            "matches": sum(len(m) for m in result.matches.values()),
            "records_per_s_per_core": round(result.records / elapsed),
        },
    )
