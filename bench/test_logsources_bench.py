"""Log source throughput and memory: `make bench` (marker benchmark).

1. Per built-in source: its clean samples (those without sidelined records) repeated into one
   ~20 MB object, normalized on one core: MB/s of decompressed text and events/s. Where the
   source is JSON, pyarrow.json.read_json on the same bytes is measured beside it (and, for a
   JSON document format, on the same records as NDJSON, which is all read_json can split).
2. Streaming: a generated ~1 GiB CloudTrail object (NDJSON, and one single JSON document)
   normalized in a subprocess with the transformer's batch size, each chunk written to Parquet
   as the transformer does; peak RSS from ru_maxrss.

Figures go to bench/results.json; nothing here asserts a time.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zstandard
from tests.conftest import SAMPLES

from tarn import logsources
from tarn.logsources import golden
from tarn.normalize import normalize

pytestmark = pytest.mark.benchmark

TARGET_BYTES = 20_000_000
STREAM_BYTES = 1 << 30
BATCH_RECORDS = 50_000  # the transformer's default (ingest.batch_records)


def _plain(data: bytes) -> bytes:
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _clean_samples(source: logsources.LogSource) -> list[bytes]:
    return [
        _plain(p.read_bytes())
        for p in golden.samples(source)
        if not golden.sidelined_path(source, p).exists()
    ]


def _repeated(source: logsources.LogSource, samples: list[bytes]) -> bytes:
    """One object of about TARGET_BYTES made of the samples, valid for the source's format."""
    parts: list[bytes] = []
    size = 0
    if source.format in ("csv", "tsv"):  # one header, then the data lines of same-header samples
        header = samples[0].split(b"\n", 1)[0]
        bodies = [s.split(b"\n", 1)[1] for s in samples if s.split(b"\n", 1)[0] == header]
        parts.append(header + b"\n")
        samples = bodies
    while size < TARGET_BYTES:
        for s in samples:
            chunk = s if s.endswith(b"\n") else s + b"\n"
            parts.append(chunk)
            size += len(chunk)
    return b"".join(parts)


def _rate(source: logsources.LogSource, data: bytes) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    rows = sidelined = 0
    for chunk in normalize(io.BytesIO(data), source, "bench", BATCH_RECORDS):
        rows += chunk.rows
        sidelined += chunk.sideline.num_rows
    return rows, sidelined, time.perf_counter() - t0


def _pyarrow_rate(data: bytes) -> dict[str, object]:
    import pyarrow.json as paj

    t0 = time.perf_counter()
    try:
        table = paj.read_json(
            io.BytesIO(data), read_options=paj.ReadOptions(use_threads=False, block_size=1 << 24)
        )
    except Exception as exc:  # heterogeneous records: read_json cannot infer one schema
        return {"pyarrow_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    seconds = time.perf_counter() - t0
    return {
        "pyarrow_rows": table.num_rows,
        "pyarrow_read_json_mb_per_s": round(len(data) / 1e6 / seconds, 2),
    }


def _records_as_ndjson(source: logsources.LogSource, data: bytes) -> bytes:
    from tarn.logsources._parse import parse

    return b"".join(
        json.dumps(r, separators=(",", ":")).encode() + b"\n"
        for _, _, r in parse(io.BytesIO(data), source.ingest)
        if not isinstance(r, Exception)
    )


@pytest.mark.parametrize("name", logsources.builtin_names())
def test_source_throughput(name: str, record_result) -> None:
    source = logsources.builtin(name)
    samples = _clean_samples(source)
    if not samples:
        pytest.skip(f"{name} has no clean samples")
    data = _repeated(source, samples)
    rows, sidelined, seconds = _rate(source, data)
    mb = len(data) / 1e6
    figures: dict[str, object] = {
        "format": source.format,
        "megabytes": round(mb, 1),
        "records": rows,
        "sidelined": sidelined,
        "mb_per_s": round(mb / seconds, 2),
        "events_per_s": round(rows / seconds),
    }
    if source.format in ("json", "ndjson") or (
        source.format == "zeek" and data.lstrip()[:1] == b"{"
    ):
        figures.update(_pyarrow_rate(data))
        if source.format == "json":
            nd = _records_as_ndjson(source, data)
            nd_rows, _, nd_seconds = _rate(source, nd)
            figures["ndjson_megabytes"] = round(len(nd) / 1e6, 1)
            figures["ndjson_mb_per_s"] = round(len(nd) / 1e6 / nd_seconds, 2)
            figures["ndjson_events_per_s"] = round(nd_rows / nd_seconds)
            figures.update({f"ndjson_{k}": v for k, v in _pyarrow_rate(nd).items()})
    record_result(f"logsource_{name}", figures)


STREAM_SCRIPT = textwrap.dedent(
    """
    import io, json, resource, sys, time
    import pyarrow.parquet as pq
    from tarn import logsources
    from tarn.normalize import normalize

    source = logsources.get("aws_cloudtrail")
    rows = sidelined = chunks = 0
    t0 = time.perf_counter()
    with open(sys.argv[1], "rb") as f:
        for chunk in normalize(f, source, "bench", int(sys.argv[2])):
            for table in chunk.tables.values():  # what the transformer does with each chunk
                buf = io.BytesIO()
                pq.write_table(table, buf, compression="zstd")
            rows += chunk.rows
            sidelined += chunk.sideline.num_rows
            chunks += 1
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "sidelined": sidelined, "chunks": chunks,
                      "seconds": seconds, "peak_rss_mib": peak_kib / 1024}))
    """
)


def _cloudtrail_records() -> list[dict]:
    records: list[dict] = []
    for path in sorted(SAMPLES.glob("*.json.gz")):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    return records


def _write_stream(path: Path, as_document: bool) -> int:
    records = _cloudtrail_records()
    block = [
        json.dumps({**records[i % len(records)], "eventID": f"stream-{i}"}).encode()
        for i in range(4000)
    ]
    sep = b",\n" if as_document else b"\n"
    body = sep.join(block)
    size = 0
    with path.open("wb") as f:
        if as_document:
            f.write(b'{"Records": [\n')
        first = True
        while size < STREAM_BYTES:
            if not first:
                f.write(sep)
            f.write(body)
            size += len(body) + len(sep)
            first = False
        f.write(b"\n]}\n" if as_document else b"\n")
    return path.stat().st_size


@pytest.mark.parametrize("shape", ["ndjson", "document"])
def test_one_gib_object_streams_in_bounded_memory(
    shape: str, tmp_path: Path, record_result
) -> None:
    path = tmp_path / f"cloudtrail-1gib.{shape}"
    size = _write_stream(path, as_document=shape == "document")
    out = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, str(path), str(BATCH_RECORDS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    path.unlink()
    record_result(
        f"logsource_stream_1gib_aws_cloudtrail_{shape}",
        {
            "bytes": size,
            "records": figures["rows"],
            "sidelined": figures["sidelined"],
            "chunks": figures["chunks"],
            "seconds": round(figures["seconds"], 1),
            "mb_per_s": round(size / 1e6 / figures["seconds"], 2),
            "events_per_s": round(figures["rows"] / figures["seconds"]),
            "peak_rss_mib": round(figures["peak_rss_mib"], 1),
            "batch_records": BATCH_RECORDS,
        },
    )
