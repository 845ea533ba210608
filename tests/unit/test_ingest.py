import gzip

import pytest
import zstandard

from tarn.exceptions import PayloadTooLargeError
from tarn.ingest import _Meter


def feed(data: bytes, limit: int) -> _Meter:
    meter = _Meter(data[:4], limit)
    for i in range(0, len(data), 1 << 16):
        meter.feed(data[i : i + (1 << 16)])
    return meter


def test_plain_body_counts_bytes() -> None:
    assert feed(b"x" * 1000, 1000).total == 1000
    with pytest.raises(PayloadTooLargeError):
        feed(b"x" * 1001, 1000)


def test_gzip_bomb_is_stopped_after_decompression_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 200_000
    with pytest.raises(PayloadTooLargeError, match="after decompression"):
        feed(bomb, 8 << 20)


def test_gzip_within_limit_counts_decompressed_size_across_members() -> None:
    data = gzip.compress(b"a" * 5000) + gzip.compress(b"b" * 3000)
    meter = feed(data, 10_000)
    assert meter.kind == "gzip" and meter.total == 8000


def test_zstd_is_measured_too() -> None:
    data = zstandard.ZstdCompressor().compress(b"z" * 50_000)
    assert feed(data, 60_000).total == 50_000
    with pytest.raises(PayloadTooLargeError):
        feed(data, 40_000)


def test_meter_memory_stays_bounded_on_large_gzip() -> None:
    import tracemalloc

    bomb = gzip.compress(b"\0" * (32 << 20))
    tracemalloc.start()
    meter = feed(bomb, 64 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert meter.total == 32 << 20
    assert peak < 8 << 20  # decompressed in 1 MiB steps, never held whole
