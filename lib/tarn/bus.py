"""NATS JetStream: the broker's streams, key-value state, and a thread-safe sync facade.

Functions run as synchronous WSGI handlers in threads; they share one NATS connection that
lives on a private asyncio loop (opened once, at first use, in the serving process).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from tarn.config import Config

T = TypeVar("T")


def event_subject(cfg: Config, type_: str) -> str:
    return f"{cfg.nats.subject_prefix}.{type_}"


async def connect(cfg: Config, name: str = "tarn") -> NATS:
    return await nats.connect(
        cfg.nats.url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
    )


async def ensure_streams(nc: NATS, cfg: Config) -> None:
    """The broker's event stream (deduplicated by Nats-Msg-Id) and the dead-letter stream."""
    js = nc.jetstream()
    day = 24 * 3600
    wanted = [
        StreamConfig(
            name=cfg.nats.stream,
            subjects=[f"{cfg.nats.subject_prefix}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=cfg.nats.max_age_days * day,
            duplicate_window=cfg.nats.duplicate_window_seconds,
            discard=DiscardPolicy.OLD,
        ),
        StreamConfig(
            name=cfg.nats.dead_letter_stream,
            subjects=[f"{cfg.nats.dead_letter_subject}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=30 * day,
            duplicate_window=cfg.nats.duplicate_window_seconds,
        ),
    ]
    for sc in wanted:
        try:
            await js.add_stream(sc)
        except nats.js.errors.BadRequestError:
            await js.update_stream(sc)


async def kv_bucket(nc: NATS, name: str, ttl_seconds: float | None = None) -> KeyValue:
    js = nc.jetstream()
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=name, history=1, storage=StorageType.FILE, ttl=ttl_seconds)
        )


async def kv_update_json(
    kv: KeyValue,
    key: str,
    fn: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    attempts: int = 100,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Compare-and-set: apply `fn` to the current value until no other writer got in between.

    Returns (before, after). `fn` returning None leaves the value unchanged.
    """
    for _ in range(attempts):
        try:
            entry = await kv.get(key)
            before = json.loads(entry.value) if entry.value else None
            revision = entry.revision
        except KeyNotFoundError:
            before, revision = None, None
        after = fn(json.loads(json.dumps(before)) if before is not None else None)
        if after is None:
            return before, before
        payload = json.dumps(after, separators=(",", ":")).encode()
        try:
            if revision is None:
                await kv.create(key, payload)
            else:
                await kv.update(key, payload, last=revision)
            return before, after
        except KeyWrongLastSequenceError:
            await asyncio.sleep(0)  # lost the race: read again
    raise RuntimeError(f"kv {kv._name}/{key}: too much contention ({attempts} attempts)")


class SyncBus:
    """One NATS connection on a background loop, callable from any thread."""

    def __init__(self, cfg: Config, name: str = "tarn") -> None:
        self.cfg = cfg
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"nats-{name}", daemon=True
        )
        self._thread.start()
        self.nc: NATS = self.run(connect(cfg, name))
        self._kv: dict[str, KeyValue] = {}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def kv(self, bucket: str, ttl_seconds: float | None = None) -> KeyValue:
        if bucket not in self._kv:
            self._kv[bucket] = self.run(kv_bucket(self.nc, bucket, ttl_seconds))
        return self._kv[bucket]

    def kv_get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        kv = self.kv(bucket)  # resolved here: self.kv() blocks on the loop, so not inside it

        async def get() -> dict[str, Any] | None:
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                return None
            return json.loads(entry.value) if entry.value else None

        return self.run(get())

    def kv_put_json(self, bucket: str, key: str, value: dict[str, Any]) -> None:
        kv = self.kv(bucket)
        self.run(kv.put(key, json.dumps(value, separators=(",", ":")).encode()))

    def kv_update_json(
        self, bucket: str, key: str, fn: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return self.run(kv_update_json(self.kv(bucket), key, fn))

    def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> int:
        async def pub() -> int:
            ack = await self.nc.jetstream().publish(subject, payload, headers=headers)
            return int(ack.seq)

        return self.run(pub())

    def close(self) -> None:
        try:
            self.run(self.nc.close(), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
