"""What every function shares: configuration, connections opened once, health routes, emit.

Connections (object store, catalog, NATS, the HTTP client to the broker) are opened on first
use in the serving process (gunicorn forks after import) and reused by every request.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from tarn import config
from tarn.bus import SyncBus
from tarn.config import Config
from tarn.lake import Lake
from tarn.storage import ObjectStore, open_store

log = logging.getLogger("tarn")


class EmitError(RuntimeError):
    pass


class Context:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.cfg)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.cfg)

    @cached_property
    def bus(self) -> SyncBus:
        return SyncBus(self.cfg, name=os.environ.get("K_SERVICE", "tarn-function"))

    @cached_property
    def http(self) -> httpx.Client:
        return httpx.Client(timeout=httpx.Timeout(30, connect=5))

    @property
    def sink(self) -> str:
        # Knative's SinkBinding sets K_SINK; locally it is the broker's ingress.
        return os.environ.get("K_SINK") or self.cfg.broker_url

    def emit(self, events: Iterable[CloudEvent]) -> int:
        """POST each event to the sink (binary mode). Raises if the sink did not take one."""
        n = 0
        for event in events:
            headers, body = to_binary(event)
            for attempt in range(3):
                try:
                    resp = self.http.post(self.sink, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    err = f"{type(exc).__name__}: {exc}"
                else:
                    if resp.status_code < 300:
                        break
                    err = f"HTTP {resp.status_code}: {resp.text[:200]}"
                time.sleep(0.2 * (attempt + 1))
            else:
                raise EmitError(
                    f"the broker at {self.sink} did not accept event {event['id']}: {err}"
                )
            n += 1
        return n

    # -- Parquet batches on the object store (claim checks) ---------------------------------
    def put_parquet(self, bucket: str, key: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.store.put_bytes(bucket, key, buf.getvalue())

    def get_parquet(self, bucket: str, key: str) -> pa.Table:
        with self.store.open(bucket, key) as f:
            return pq.read_table(f)

    def close(self) -> None:
        """Close the connections this context opened (only those it opened)."""
        if "bus" in self.__dict__:
            self.bus.close()
        if "http" in self.__dict__:
            self.http.close()

    def readiness(self, *parts: str) -> dict[str, Any]:
        """Check the named connections: 'store', 'lake', 'bus'."""
        status: dict[str, Any] = {}
        for part in parts:
            try:
                if part == "bus":
                    status[part] = self.bus.connected
                elif part == "lake":
                    self.lake.table_names()
                    status[part] = True
                elif part == "store":
                    self.store.exists(self.cfg.storage.raw_bucket, ".tarn-readiness")
                    status[part] = True
            except Exception as exc:
                status[part] = f"{type(exc).__name__}: {exc}"
        return status


_context: Context | None = None
_context_lock = threading.Lock()


def context() -> Context:
    global _context
    with _context_lock:
        if _context is None:
            _context = Context(config.get())
        return _context


def reset_context() -> None:
    """Forget the process-wide context (tests that change configuration)."""
    global _context
    with _context_lock:
        if _context is not None:
            _context.close()
        _context = None
    config.reset()


def install_health(*parts: str) -> None:
    """Add GET /healthz (alive) and /readyz (the named connections are up) to the function's app."""
    import flask

    app = flask.current_app

    def healthz() -> Any:
        return {"ok": True}

    def readyz() -> Any:
        status = context().readiness(*parts)
        ok = all(v is True for v in status.values())
        return flask.jsonify(status), 200 if ok else 503

    if "tarn_healthz" not in app.view_functions:
        app.add_url_rule("/healthz", "tarn_healthz", healthz, methods=["GET"])
        app.add_url_rule("/readyz", "tarn_readyz", readyz, methods=["GET"])


Handler = Callable[[CloudEvent], Any]
