"""Follow an ingest through the pipeline by reading the broker's event stream.

`tarn ingest --wait` and the benchmarks use it: an ingest is done when every normalized
batch of it has been committed to the lake and its detections have run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy

from tarn import bus, events
from tarn.config import Config


@dataclass
class IngestProgress:
    ingest_id: str
    chunks: int | None = None
    normalized: set[str] = field(default_factory=set)
    committed: set[str] = field(default_factory=set)
    detected: set[str] = field(default_factory=set)
    good: int = 0
    sidelined: int = 0
    matches: int = 0
    committed_at: float | None = None

    @property
    def done(self) -> bool:
        return (
            self.chunks is not None
            and len(self.normalized) == self.chunks
            and self.normalized <= self.committed
            and self.normalized <= self.detected
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id,
            "batches": self.chunks,
            "records": self.good,
            "sidelined": self.sidelined,
            "matches": self.matches,
        }


def _apply(progress: dict[str, IngestProgress], type_: str, data: dict[str, Any]) -> None:
    p = progress.get(data.get("ingest_id", ""))
    if p is None:
        return
    batch = data["batch_id"]
    if type_ == events.BATCH_NORMALIZED and batch not in p.normalized:
        p.normalized.add(batch)
        p.good += data["counts"]["good"]
        p.sidelined += data["counts"]["sidelined"]
        if data.get("final"):
            p.chunks = data["chunks"]
    elif type_ == events.LAKE_COMMITTED:
        p.committed.add(batch)
        if p.chunks is not None and len(p.committed) >= p.chunks:
            p.committed_at = p.committed_at or time.time()
    elif type_ == events.BATCH_DETECTED and batch not in p.detected:
        p.detected.add(batch)
        p.matches += sum(data.get("matches", {}).values())


async def stream_position(cfg: Config) -> int:
    nc = await bus.connect(cfg, "tarn-watch")
    try:
        await bus.ensure_streams(nc, cfg)
        info = await nc.jetstream().stream_info(cfg.nats.stream)
        return int(info.state.last_seq)
    finally:
        await nc.close()


async def wait_for_ingests(
    cfg: Config,
    ingest_ids: list[str],
    after_seq: int,
    timeout: float,
    on_progress: Callable[[dict[str, IngestProgress]], None] | None = None,
) -> dict[str, IngestProgress]:
    """Read the stream from `after_seq` until every ingest is done (TimeoutError otherwise)."""
    progress = {i: IngestProgress(i) for i in ingest_ids}
    nc = await bus.connect(cfg, "tarn-watch")
    try:
        js = nc.jetstream()
        types = (events.BATCH_NORMALIZED, events.LAKE_COMMITTED, events.BATCH_DETECTED)
        sub = await js.subscribe(
            f"{cfg.nats.subject_prefix}.>",
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
            ),
        )
        deadline = time.monotonic() + timeout
        while not all(p.done for p in progress.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    "gave up waiting; "
                    + "; ".join(
                        f"{p.ingest_id}: {len(p.committed)}/{p.chunks or '?'} committed, {len(p.detected)} detected"
                        for p in progress.values()
                    )
                )
            try:
                msg = await sub.next_msg(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            env = json.loads(msg.data)
            if env.get("type") in types and isinstance(env.get("data"), dict):
                _apply(progress, env["type"], env["data"])
                if on_progress:
                    on_progress(progress)
        await sub.unsubscribe()
        return progress
    finally:
        await nc.close()


async def wait_idle(
    cfg: Config, trigger_names: list[str], timeout: float, quiet: float = 1.5
) -> None:
    """Wait until no Trigger has an event waiting or in flight, for `quiet` seconds in a row."""
    nc = await bus.connect(cfg, "tarn-watch")
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        while True:
            busy = 0
            for name in trigger_names:
                try:
                    info = await js.consumer_info(cfg.nats.stream, f"trigger-{name}")
                except Exception:
                    busy += 1  # the broker has not created it yet
                    continue
                busy += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            now = time.monotonic()
            if busy == 0:
                idle_since = idle_since or now
                if now - idle_since >= quiet:
                    return
            else:
                idle_since = None
            if now > deadline:
                raise TimeoutError(
                    f"the pipeline was still busy after {timeout:.0f}s ({busy} events pending)"
                )
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
