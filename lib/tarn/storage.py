"""Object storage: MinIO (or any S3) when configured, otherwise a local directory.

Both back-ends speak (bucket, key). Writes are atomic: a reader never sees half an object.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from tarn.config import Config


class ObjectStore(Protocol):
    def put_file(self, bucket: str, key: str, path: Path) -> None: ...
    def put_bytes(self, bucket: str, key: str, data: bytes) -> None: ...
    def get_bytes(self, bucket: str, key: str) -> bytes: ...
    def open(self, bucket: str, key: str) -> IO[bytes]: ...
    def exists(self, bucket: str, key: str) -> bool: ...
    def list(self, bucket: str, prefix: str = "") -> Iterator[str]: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def uri(self, bucket: str, key: str) -> str: ...


class LocalStore:
    """Buckets are folders under `root`; a write goes to a temp file and is renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to((self.root / bucket).resolve()):
            raise ValueError(f"object key {key!r} escapes bucket {bucket!r}")
        return path

    def _atomic_target(self, bucket: str, key: str) -> tuple[Path, int, str]:
        target = self._path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        return target, fd, tmp

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        target, fd, tmp = self._atomic_target(bucket, key)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, target)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        target, fd, tmp = self._atomic_target(bucket, key)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self._path(bucket, key).read_bytes()

    def open(self, bucket: str, key: str) -> IO[bytes]:
        return open(self._path(bucket, key), "rb")

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def list(self, bucket: str, prefix: str = "") -> Iterator[str]:
        base = self.root / bucket
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield key

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)

    def uri(self, bucket: str, key: str) -> str:
        return self._path(bucket, key).as_uri()


class S3Store:
    """MinIO or any S3 endpoint, path-style, through the minio client."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str) -> None:
        from urllib.parse import urlparse

        from minio import Minio

        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.client = Minio(
            parsed.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=parsed.scheme == "https",
            region=region,
        )

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        self.client.fput_object(bucket, key, str(path))

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(bucket, key, io.BytesIO(data), len(data))

    def get_bytes(self, bucket: str, key: str) -> bytes:
        resp = self.client.get_object(bucket, key)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def open(self, bucket: str, key: str) -> IO[bytes]:
        # Spool to a temp file so readers can seek (Parquet) and memory stays bounded.
        tmp = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        resp = self.client.get_object(bucket, key)
        try:
            for chunk in resp.stream(1 << 20):
                tmp.write(chunk)
        finally:
            resp.close()
            resp.release_conn()
        tmp.seek(0)
        return tmp

    def exists(self, bucket: str, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(bucket, key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return False
            raise

    def list(self, bucket: str, prefix: str = "") -> Iterator[str]:
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.object_name:
                yield obj.object_name

    def delete(self, bucket: str, key: str) -> None:
        self.client.remove_object(bucket, key)

    def uri(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"


def open_store(cfg: Config) -> ObjectStore:
    if cfg.storage.kind == "s3":
        if not (cfg.storage.endpoint and cfg.storage.access_key and cfg.storage.secret_key):
            from tarn.exceptions import ConfigError

            raise ConfigError(
                "storage.kind is s3 but storage.endpoint/access_key/secret_key are not all set; "
                "set TARN_STORAGE__ENDPOINT, TARN_STORAGE__ACCESS_KEY and TARN_STORAGE__SECRET_KEY "
                "(`tarn services up` prints them)"
            )
        return S3Store(
            cfg.storage.endpoint, cfg.storage.access_key, cfg.storage.secret_key, cfg.storage.region
        )
    return LocalStore(cfg.storage_root)


def s3_fileio_properties(cfg: Config) -> dict[str, str]:
    """pyiceberg FileIO properties for the configured object store."""
    if cfg.storage.kind != "s3":
        return {}
    return {
        "s3.endpoint": cfg.storage.endpoint or "",
        "s3.access-key-id": cfg.storage.access_key or "",
        "s3.secret-access-key": cfg.storage.secret_key or "",
        "s3.region": cfg.storage.region,
        "s3.force-virtual-addressing": "false",
    }
