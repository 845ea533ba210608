"""Bucket notifications -> CloudEvents: the second way logs come in.

MinIO publishes an S3-style event to NATS JetStream for every object created under `raw/` in
the raw bucket. This bridge turns each into `dev.tarn.object.raw.v1` and posts it to the broker.
The event id derives from bucket, key and ETag, so a repeated notification for the same object
yields the same id: the broker drops it within its duplicate window, and past that the lake
writer still skips its batches (their ids derive from this one).

Objects the ingestor stores go under `ingest/`, not `raw/`, so they are never announced twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

import httpx
from cloudevents.conversion import to_binary, to_json
from nats.js.api import AckPolicy, ConsumerConfig

from tarn import bus, events, logsources
from tarn.config import Config
from tarn.exceptions import UnknownLogSourceError

log = logging.getLogger("tarn.notifications")

DROP_PREFIX = "raw/"
DURABLE = "tarn-bucket-bridge"


def raw_events(cfg: Config, message: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The raw-object events for one MinIO notification, and the reasons for records skipped."""
    out, problems = [], []
    for record in message.get("Records") or []:
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        key = unquote_plus(obj.get("key") or "")
        if not str(record.get("eventName", "")).startswith("s3:ObjectCreated:"):
            continue
        if bucket != cfg.storage.raw_bucket or not key.startswith(DROP_PREFIX):
            continue
        parts = key.split("/")
        if len(parts) < 3 or not parts[1]:
            problems.append(f"{bucket}/{key}: put objects under raw/<log_source>/")
            continue
        try:
            source = logsources.get(parts[1], cfg.config_dir)
        except UnknownLogSourceError as exc:
            problems.append(f"{bucket}/{key}: {exc}")
            continue
        event_id = events.derive_id(
            "bucket", bucket, key, obj.get("eTag") or obj.get("sequencer") or ""
        )
        out.append(
            events.make_event(
                events.OBJECT_RAW,
                "bucket-notifications",
                {
                    "log_source": source.name,
                    "bucket": bucket,
                    "key": key,
                    "ingest_id": event_id,
                    "size": obj.get("size"),
                },
                id_=event_id,
                subject=key,
            )
        )
    return out, problems


class Bridge:
    def __init__(self, cfg: Config, sink: str) -> None:
        self.cfg = cfg
        self.sink = sink
        self.forwarded = 0

    async def _dead_letter(self, js: Any, problem: str, payload: bytes) -> None:
        # Nothing is dropped silently: an object we cannot take is kept, with the reason.
        event = events.make_event(
            "dev.tarn.bucket.unroutable.v1",
            "bucket-notifications",
            {"reason": problem, "notification": json.loads(payload)},
            id_=events.derive_id("unroutable", problem),
        )
        event["knativeerrorcode"] = "422"
        event["tarntrigger"] = "bucket-notifications"
        await js.publish(
            f"{self.cfg.nats.dead_letter_subject}.bucket-notifications",
            to_json(event),
            headers={"Nats-Msg-Id": event["id"]},
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        nc = await bus.connect(self.cfg, "tarn-bucket-bridge")
        await bus.ensure_streams(nc, self.cfg)
        js = nc.jetstream()
        n = self.cfg.notifications
        psub = await js.pull_subscribe(
            n.subject,
            durable=DURABLE,
            stream=n.stream,
            config=ConsumerConfig(
                durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=60, max_deliver=-1
            ),
        )
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                try:
                    msgs = await psub.fetch(16, timeout=1)
                except TimeoutError:
                    continue
                for msg in msgs:
                    try:
                        evs, problems = raw_events(self.cfg, json.loads(msg.data))
                        for problem in problems:
                            log.warning("bucket notification not routed: %s", problem)
                            await self._dead_letter(js, problem, msg.data)
                        for ev in evs:
                            headers, body = to_binary(ev)
                            resp = await client.post(self.sink, headers=headers, content=body)
                            resp.raise_for_status()
                            self.forwarded += 1
                        await msg.ack()
                    except (httpx.HTTPError, OSError) as exc:
                        log.warning("broker did not take a bucket event, retrying: %s", exc)
                        await msg.nak(delay=2)
                    except ValueError as exc:
                        log.error(
                            "unreadable bucket notification kept in the dead-letter stream: %s", exc
                        )
                        await self._dead_letter(
                            js,
                            f"unreadable notification: {exc}",
                            json.dumps({"raw": msg.data.decode("utf-8", "replace")}).encode(),
                        )
                        await msg.ack()
        await nc.drain()


def main() -> None:
    import os

    from tarn import config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = config.get()
    asyncio.run(Bridge(cfg, os.environ.get("K_SINK") or cfg.broker_url).run())


if __name__ == "__main__":
    main()
