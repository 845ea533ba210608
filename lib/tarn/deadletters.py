"""The dead-letter stream: list what failed, and replay it."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from nats.js.errors import NotFoundError

from tarn import bus
from tarn.config import Config

_ERROR_ATTRS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata", "tarntrigger")


async def _messages(cfg: Config) -> list[tuple[int, dict[str, Any]]]:
    nc = await bus.connect(cfg, "tarn-dlq")
    try:
        await bus.ensure_streams(nc, cfg)
        js = nc.jetstream()
        info = await js.stream_info(cfg.nats.dead_letter_stream)
        out: list[tuple[int, dict[str, Any]]] = []
        if not info.state.messages:
            return out
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                msg = await js.get_msg(cfg.nats.dead_letter_stream, seq)
            except NotFoundError:
                continue
            if msg.data:
                out.append((seq, json.loads(msg.data)))
        return out
    finally:
        await nc.close()


async def list_dead_letters(cfg: Config) -> list[dict[str, Any]]:
    rows = []
    for seq, ev in await _messages(cfg):
        detail = ev.get("knativeerrordata") or ""
        with contextlib.suppress(ValueError):
            detail = base64.b64decode(detail).decode("utf-8", "replace")
        rows.append(
            {
                "seq": seq,
                "trigger": ev.get("tarntrigger", ""),
                "type": ev.get("type"),
                "id": ev.get("id"),
                "error": f"{ev.get('knativeerrorcode', '')} {detail[:120]}".strip(),
                "destination": ev.get("knativeerrordest", ""),
                "time": ev.get("time", ""),
                "event": ev,
            }
        )
    return rows


async def replay(cfg: Config, seqs: list[int] | None) -> list[int]:
    """Republish to the event stream (a fresh Nats-Msg-Id, the same CloudEvent id), then delete."""
    wanted = dict(await _messages(cfg))
    chosen = sorted(wanted) if seqs is None else [s for s in seqs if s in wanted]
    nc = await bus.connect(cfg, "tarn-dlq")
    try:
        js = nc.jetstream()
        for seq in chosen:
            ev = {k: v for k, v in wanted[seq].items() if k not in _ERROR_ATTRS}
            await js.publish(
                bus.event_subject(cfg, ev["type"]),
                json.dumps(ev).encode(),
                headers={"Nats-Msg-Id": f"{ev['id']}:replay:{seq}"},
            )
            await js.delete_msg(cfg.nats.dead_letter_stream, seq)
        return chosen
    finally:
        await nc.close()
