"""The local broker's runtime: an HTTP ingress and one durable JetStream consumer per Trigger.

- Ingress (`POST /` or `POST /<namespace>/<broker>`): a CloudEvent in binary or structured
  mode is published to the event stream with `Nats-Msg-Id` = the event id, so a retried
  sender does not publish twice.
- Each Trigger has a durable pull consumer. A message that passes the Trigger's filter is
  POSTed (binary mode) to the subscriber, retried with the Trigger's backoff, and after
  `retry` failed retries sent to the dead-letter sink with Knative's error extensions.
  It is acked only once the subscriber or the dead-letter sink took it, so a broker crash
  redelivers rather than loses (at least once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx
import uvicorn
from cloudevents.conversion import to_binary, to_json
from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent, from_http, from_json
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tarn import bus
from tarn.broker import Trigger, TriggerError
from tarn.config import Config

log = logging.getLogger("tarn.broker")

ACK_WAIT_SECONDS = 300


class Broker:
    def __init__(self, cfg: Config, triggers: list[Trigger], services: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.triggers = triggers
        self.services = dict(services)
        self.nc: NATS | None = None
        self.stats: dict[str, Counter[str]] = {t.name: Counter() for t in triggers}
        self.ingress_count = 0
        self._stopping = asyncio.Event()
        # Resolve every address up front: a Trigger pointing nowhere is a start-up error.
        self.routes = {
            t.name: (
                t.subscriber.resolve(self.services),
                t.dead_letter.resolve(self.services) if t.dead_letter else None,
            )
            for t in triggers
        }

    # -- ingress ----------------------------------------------------------------------------
    async def publish(self, event: CloudEvent) -> None:
        assert self.nc is not None
        subject = bus.event_subject(self.cfg, event["type"])
        await self.nc.jetstream().publish(
            subject, to_json(event), headers={"Nats-Msg-Id": event["id"]}
        )
        self.ingress_count += 1

    async def ingress(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = from_http(dict(request.headers), body)
        except (CloudEventError, ValueError) as exc:
            return JSONResponse({"error": f"not a CloudEvent: {exc}"}, status_code=400)
        try:
            await self.publish(event)
        except Exception as exc:  # NATS down: tell the sender to retry
            log.warning("publish failed: %s", exc)
            return JSONResponse(
                {"error": f"broker cannot store the event now: {exc}"}, status_code=503
            )
        return Response(status_code=202)

    async def health(self, request: Request) -> Response:
        ok = self.nc is not None and self.nc.is_connected
        return JSONResponse({"nats": ok}, status_code=200 if ok else 503)

    async def stats_view(self, request: Request) -> Response:
        return JSONResponse(
            {"ingress": self.ingress_count, "triggers": {k: dict(v) for k, v in self.stats.items()}}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/healthz", self.health, methods=["GET"]),
                Route("/stats", self.stats_view, methods=["GET"]),
                Route("/", self.ingress, methods=["POST"]),
                Route("/{namespace}/{broker}", self.ingress, methods=["POST"]),
            ]
        )

    # -- dispatch ---------------------------------------------------------------------------
    async def _consume(self, trigger: Trigger, client: httpx.AsyncClient) -> None:
        assert self.nc is not None
        js = self.nc.jetstream()
        subject = (
            bus.event_subject(self.cfg, trigger.type_filter)
            if trigger.type_filter
            else f"{self.cfg.nats.subject_prefix}.>"
        )
        durable = f"trigger-{trigger.name}"
        psub = await js.pull_subscribe(
            subject,
            durable=durable,
            stream=self.cfg.nats.stream,
            config=ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_SECONDS,
                max_deliver=-1,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=self.cfg.broker.concurrency * 4,
            ),
        )
        slots = asyncio.Semaphore(self.cfg.broker.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        while not self._stopping.is_set():
            await slots.acquire()
            try:
                msgs = await psub.fetch(1, timeout=1)
            except TimeoutError:
                slots.release()
                continue
            except Exception as exc:  # connection blips: back off and fetch again
                slots.release()
                log.warning("%s: fetch failed: %s", trigger.name, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                task = asyncio.create_task(self._dispatch(trigger, msg, client))
                tasks.add(task)
                task.add_done_callback(_finished(tasks, slots))
        for task in list(tasks):
            task.cancel()

    async def _dispatch(self, trigger: Trigger, msg: Msg, client: httpx.AsyncClient) -> None:
        stats = self.stats[trigger.name]
        try:
            event = from_json(msg.data)
        except Exception as exc:
            log.error("%s: unreadable message on the stream, acking it away: %s", trigger.name, exc)
            await msg.ack()
            return
        if not trigger.matches(event.get_attributes()):
            await msg.ack()
            return
        url, dead_letter = self.routes[trigger.name]
        status, detail = 0, ""
        for attempt in range(trigger.retry + 1):
            if attempt:
                stats["retries"] += 1
                await msg.in_progress()
                await asyncio.sleep(trigger.backoff(attempt))
            status, detail, reply = await self._post(client, url, event)
            if 200 <= status < 300:
                if reply is not None:
                    await self.publish(reply)
                stats["delivered"] += 1
                await msg.ack()
                return
            log.warning(
                "%s: delivery of %s to %s failed (%s): %s",
                trigger.name,
                event["id"],
                url,
                status,
                detail[:200],
            )
        if dead_letter is None:
            log.error(
                "%s: %s dropped after %d retries (no deadLetterSink)",
                trigger.name,
                event["id"],
                trigger.retry,
            )
            stats["dropped"] += 1
            await msg.ack()
            return
        dead = CloudEvent(
            {
                **event.get_attributes(),
                "knativeerrordest": url,
                "knativeerrorcode": str(status),
                "knativeerrordata": base64.b64encode(detail.encode()[:4096]).decode(),
                "tarntrigger": trigger.name,
            },
            event.get_data(),
        )
        dl_status, dl_detail, _ = await self._post(client, dead_letter, dead)
        if 200 <= dl_status < 300:
            stats["dead_lettered"] += 1
            await msg.ack()
        else:
            # Keep it: JetStream redelivers later, nothing is lost while the sink is down.
            log.error(
                "%s: dead-letter sink failed (%s): %s", trigger.name, dl_status, dl_detail[:200]
            )
            stats["dead_letter_failed"] += 1
            await msg.nak(delay=5)

    async def _post(
        self, client: httpx.AsyncClient, url: str, event: CloudEvent
    ) -> tuple[int, str, CloudEvent | None]:
        headers, body = to_binary(event)
        try:
            resp = await client.post(url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}", None
        reply = None
        if 200 <= resp.status_code < 300 and (
            "ce-type" in resp.headers or "cloudevents" in resp.headers.get("content-type", "")
        ):
            with contextlib.suppress(CloudEventError, ValueError):
                reply = from_http(dict(resp.headers), resp.content)
        return resp.status_code, resp.text, reply

    # -- life cycle -------------------------------------------------------------------------
    async def run(self) -> None:
        self.nc = await bus.connect(self.cfg, "tarn-broker")
        await bus.ensure_streams(self.nc, self.cfg)
        timeout = httpx.Timeout(self.cfg.broker.timeout_seconds, connect=5)
        limits = httpx.Limits(max_connections=len(self.triggers) * self.cfg.broker.concurrency + 8)
        server = uvicorn.Server(
            uvicorn.Config(
                self.app(),
                host=self.cfg.broker.host,
                port=self.cfg.broker.port,
                log_level="warning",
                access_log=False,
            )
        )
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            consumers = [asyncio.create_task(self._consume(t, client)) for t in self.triggers]
            try:
                await server.serve()
            finally:
                self._stopping.set()
                await asyncio.gather(*consumers, return_exceptions=True)
                await self.nc.drain()


def _finished(tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        slots.release()

    return done


def main(argv: list[str] | None = None) -> None:
    import argparse

    from tarn import config
    from tarn.broker import load_triggers

    parser = argparse.ArgumentParser(prog="python -m tarn.broker", description=__doc__)
    parser.add_argument("--services", required=True, help="JSON file: {service name: URL}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = config.get()
    with open(args.services) as f:
        services = json.load(f)
    try:
        broker = Broker(cfg, load_triggers(cfg.broker.eventing_dir), services)
    except TriggerError as exc:
        raise SystemExit(f"tarn broker: {exc}") from None
    asyncio.run(broker.run())
