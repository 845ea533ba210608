"""The ingestor's work: authenticate, stream the body to the raw bucket within limits, emit.

The body is never held in memory: it is copied in chunks to a temporary file while its size,
and its size after decompression (gzip, zstd), are counted against the limit.
"""

from __future__ import annotations

import hmac
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tarn import events, logsources
from tarn.exceptions import PayloadTooLargeError, TarnError, UnknownLogSourceError
from tarn.logsources._parse import GZIP_MAGIC, ZSTD_MAGIC
from tarn.runtime import Context

CHUNK = 1 << 20


class Unauthorized(TarnError):
    pass


class EmptyBody(TarnError):
    pass


@dataclass
class Accepted:
    ingest_id: str
    bucket: str
    key: str
    bytes: int
    decompressed_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class _Meter:
    """Counts decompressed bytes of a gzip or zstd stream without keeping them."""

    def __init__(self, head: bytes, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.kind = (
            "gzip"
            if head.startswith(GZIP_MAGIC)
            else "zstd"
            if head.startswith(ZSTD_MAGIC)
            else "none"
        )
        if self.kind == "gzip":
            self._z: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.kind == "zstd":
            import zstandard

            self._z = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, chunk: bytes) -> None:
        if self.kind == "none":
            self.total += len(chunk)
        elif self.kind == "gzip":
            data = chunk
            while data:
                # max_length bounds memory even for a decompression bomb.
                out = self._z.decompress(data, CHUNK)
                self.total += len(out)
                if self.total > self.limit:
                    break
                data = self._z.unconsumed_tail
                if self._z.eof and self._z.unused_data:
                    # Concatenated gzip members: start the next one.
                    rest = self._z.unused_data
                    self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data = rest
        else:
            for piece in _zstd_pieces(self._z, chunk):
                self.total += piece
                if self.total > self.limit:
                    break
        if self.total > self.limit:
            raise PayloadTooLargeError(self.limit)


def _zstd_pieces(z: Any, chunk: bytes) -> Any:
    # zstandard's decompressobj has no max_length; feed it in small slices to bound memory.
    for i in range(0, len(chunk), 64 * 1024):
        yield len(z.decompress(chunk[i : i + 64 * 1024]))


def check_token(ctx: Context, authorization: str | None) -> None:
    expected = ctx.cfg.ingest_token()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("missing or wrong bearer token; send `Authorization: Bearer <token>`")


def accept(
    ctx: Context, log_source: str, body: IO[bytes], *, idempotency_key: str | None = None
) -> Accepted:
    """Store the body as a raw object and emit dev.tarn.object.raw.v1 for it."""
    source = logsources.get(log_source, ctx.cfg.config_dir)  # raises UnknownLogSourceError
    limit = ctx.cfg.ingest.max_body_bytes
    ingest_id = (
        events.derive_id("ingest", log_source, idempotency_key)
        if idempotency_key
        else uuid.uuid4().hex
    )
    now = datetime.now(UTC)
    with tempfile.NamedTemporaryFile(prefix="tarn-ingest-", suffix=".raw") as tmp:
        meter: _Meter | None = None
        size = 0
        while chunk := body.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(limit)
            if meter is None:
                meter = _Meter(chunk[:4], limit)
            meter.feed(chunk)
            tmp.write(chunk)
        if size == 0:
            raise EmptyBody(
                "the request body is empty; send NDJSON or a JSON document (optionally gzip/zstd)"
            )
        tmp.flush()
        assert meter is not None
        ext = {"gzip": ".gz", "zstd": ".zst"}.get(meter.kind, "")
        # Not under raw/: that prefix is the drop zone whose bucket notifications start an ingest.
        key = f"ingest/{source.name}/{now:%Y/%m/%d}/{ingest_id}.json{ext}"
        ctx.store.put_file(ctx.cfg.storage.raw_bucket, key, Path(tmp.name))
    accepted = Accepted(ingest_id, ctx.cfg.storage.raw_bucket, key, size, meter.total)
    ctx.emit([raw_object_event(source.name, accepted.bucket, key, ingest_id, size)])
    return accepted


def raw_object_event(log_source: str, bucket: str, key: str, ingest_id: str, size: int) -> Any:
    return events.make_event(
        events.OBJECT_RAW,
        "ingestor",
        {
            "log_source": log_source,
            "bucket": bucket,
            "key": key,
            "ingest_id": ingest_id,
            "size": size,
        },
        id_=ingest_id,
        subject=key,
    )


__all__ = [
    "Accepted",
    "EmptyBody",
    "Unauthorized",
    "UnknownLogSourceError",
    "accept",
    "check_token",
]
