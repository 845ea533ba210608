"""Log source throughput and memory: `make bench` (marker benchmark).

1. Per built-in source: its clean samples (those without sidelined records) repeated into one
   ~20 MB object (Zeek: a file per log as Zeek writes them, TSV, and JSON lines as
   `zeek_json`), normalized on one core: MB/s of decompressed text and events/s. Where the
   source is JSON, pyarrow.json.read_json (one thread) on the same bytes is measured beside
   it, and the ratio of the two rates is the figure (for a JSON document format also on the
   same records as NDJSON); csv/tsv sources have pyarrow.csv.read_csv beside them. Zeek TSV
   (header lines) and syslog have no Arrow reader to compare with. A source with a batch transform is also measured record by record
   (columnar="off"). Each figure is the best of ROUNDS runs, ours and pyarrow's taken in
   turn, so that a busy machine slows both alike.
2. Streaming: a generated ~1 GiB CloudTrail object (NDJSON, and one single JSON document)
   normalized in a subprocess with the transformer's batch size, each chunk written to Parquet
   as the transformer does; peak RSS from the process's VmHWM (its own high-water mark).

Figures go to bench/results.json; nothing here asserts a time.
"""

from __future__ import annotations

import gc
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
ROUNDS = 5
CLOUDTRAIL_TARGET_RATIO = 0.5  # of pyarrow.json.read_json's single-thread rate
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


def _normalize(
    source: logsources.LogSource, data: bytes, columnar: str = "auto"
) -> tuple[int, int]:
    rows = sidelined = 0
    for chunk in normalize(io.BytesIO(data), source, "bench", BATCH_RECORDS, columnar=columnar):
        rows += chunk.rows
        sidelined += chunk.sideline.num_rows
    return rows, sidelined


def _read_json(data: bytes, source: logsources.LogSource) -> int:
    import pyarrow.json as paj

    options = paj.ReadOptions(use_threads=False, block_size=1 << 24)
    return paj.read_json(io.BytesIO(data), read_options=options).num_rows


def _read_csv(data: bytes, source: logsources.LogSource) -> int:
    import pyarrow.csv as pacsv

    delimiter = "\t" if source.format == "tsv" else source.ingest.delimiter or ","
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
    ).num_rows


# Arrow's own reader of the same bytes, where there is one: JSON lines, and delimited text
_PYARROW_READERS = {"read_json": _read_json, "read_csv": _read_csv}


def _timed(fn, *args) -> tuple[float, object]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _figures(source: logsources.LogSource, data: bytes, reader: str | None) -> dict[str, object]:
    """Best-of-ROUNDS rates of normalize() (and of pyarrow's `reader`, in turn with it)."""
    ours: list[float] = []
    theirs: list[float] = []
    rows = sidelined = 0
    pyarrow_rows: int | None = None
    error = None
    for _ in range(ROUNDS):
        seconds, (rows, sidelined) = _timed(_normalize, source, data)
        ours.append(seconds)
        if reader is not None and error is None:
            try:
                seconds, pyarrow_rows = _timed(_PYARROW_READERS[reader], data, source)
                theirs.append(seconds)
            except Exception as exc:  # heterogeneous records: read_json cannot infer one schema
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
    mb = len(data) / 1e6
    out: dict[str, object] = {
        "megabytes": round(mb, 1),
        "records": rows,
        "sidelined": sidelined,
        "mb_per_s": round(mb / min(ours), 2),
        "events_per_s": round(rows / min(ours)),
    }
    if error is not None:
        out["pyarrow_error"] = error
    elif theirs:
        out["pyarrow_rows"] = pyarrow_rows
        out[f"pyarrow_{reader}_mb_per_s"] = round(mb / min(theirs), 2)
        out["ratio_to_pyarrow"] = round(min(theirs) / min(ours), 3)
    if source.columnar is not None:
        seconds = min(_timed(_normalize, source, data, "off")[0] for _ in range(2))
        out["record_by_record_mb_per_s"] = round(mb / seconds, 2)
    return out


def _records_as_ndjson(source: logsources.LogSource, data: bytes) -> bytes:
    from tarn.logsources._parse import parse

    return b"".join(
        json.dumps(r, separators=(",", ":")).encode() + b"\n"
        for _, _, r in parse(io.BytesIO(data), source.ingest)
        if not isinstance(r, Exception)
    )


def _zeek_objects(source: logsources.LogSource) -> dict[str, bytes]:
    """Zeek as Zeek writes it: a file per log, its header once, then its lines (the clean
    TSV samples, each log's lines repeated to a quarter of TARGET_BYTES, one after the
    other); and Zeek's JSON writer: the lines of the JSON samples that land, repeated."""
    tsv: list[bytes] = []
    good_json: list[bytes] = []
    for path in golden.samples(source):
        data = _plain(path.read_bytes())
        if data.lstrip()[:1] == b"{":
            for line in data.splitlines():
                if line.strip() and _normalize(source, line + b"\n") == (1, 0):
                    good_json.append(line + b"\n")
        elif not golden.sidelined_path(source, path).exists():
            lines = data.splitlines(keepends=True)
            head = [x for x in lines if x.startswith(b"#") and not x.startswith(b"#close")]
            body = b"".join(x for x in lines if x.strip() and not x.startswith(b"#"))
            tsv.append(b"".join(head) + body * (TARGET_BYTES // 4 // len(body) + 1))
    json_body = b"".join(good_json)
    return {
        "tsv": b"".join(tsv),
        "json": json_body * (TARGET_BYTES // len(json_body) + 1),
    }


@pytest.mark.parametrize("name", [*logsources.builtin_names(), "zeek_json"])
def test_source_throughput(name: str, record_result) -> None:
    source = logsources.builtin("zeek" if name == "zeek_json" else name)
    samples = _clean_samples(source)
    if not samples:
        pytest.skip(f"{name} has no clean samples")
    if source.name == "zeek":
        data = _zeek_objects(source)["json" if name == "zeek_json" else "tsv"]
    else:
        data = _repeated(source, samples)
    is_json = source.format in ("json", "ndjson") or (
        source.format == "zeek" and data.lstrip()[:1] == b"{"
    )
    reader = "read_json" if is_json else "read_csv" if source.format in ("csv", "tsv") else None
    figures: dict[str, object] = {
        "format": source.format,
        "batch_transform": source.columnar is not None,
        **_figures(source, data, reader),
    }
    if source.format == "json":
        nd = _records_as_ndjson(source, data)
        figures.update({f"ndjson_{k}": v for k, v in _figures(source, nd, "read_json").items()})
    if name == "aws_cloudtrail":
        figures["target_ratio_to_pyarrow"] = CLOUDTRAIL_TARGET_RATIO
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
    # VmHWM: this process's own peak. ru_maxrss is not: Linux carries it across exec, so it
    # would report the peak of the pytest process that started this one.
    try:
        with open("/proc/self/status") as status:
            peak_kib = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
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
