"""A local Slack Web API that serves `chat.postMessage` and checks it as Slack does.

It wants a bot token (`Authorization: Bearer xoxb-...`), a JSON body, a channel, fallback
`text`, and Block Kit `blocks` within Slack's limits (header, section, context and divider
blocks with the right text objects). Like Slack it answers HTTP 200 with `ok: false` and an
error code when it refuses, resolves a `#name` to a channel ID, and issues a `ts` per message;
a `thread_ts` must be the `ts` of a top-level message it issued in that channel.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tarn.peers._http import HttpPeer, Reply, json_body, media_type

MAX_BLOCKS = 50
HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10
BLOCK_ID_MAX = 255
MESSAGE_TEXT_MAX = 40_000

MESSAGE_KEYS = {
    "channel", "text", "blocks", "thread_ts", "reply_broadcast", "unfurl_links", "unfurl_media",
    "mrkdwn", "metadata", "username", "icon_emoji", "icon_url", "link_names", "parse",
}  # fmt: skip
_TS = re.compile(r"\d{10}\.\d{6}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")


def _check_text_object(obj: Any, where: str, limit: int, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must be a text object [json-pointer:{where}]"]
    problems = []
    kind = obj.get("type")
    if kind not in kinds:
        problems.append(
            f"text type must be one of {list(kinds)}, not {kind!r} [json-pointer:{where}]"
        )
    allowed = {"type", "text", "emoji"} if kind == "plain_text" else {"type", "text", "verbatim"}
    extra = set(obj) - allowed
    if extra:
        problems.append(f"invalid additional property: {sorted(extra)} [json-pointer:{where}]")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"must be a non-empty string [json-pointer:{where}/text]")
    elif len(text) > limit:
        problems.append(
            f"must be less than {limit + 1} characters (has {len(text)}) [json-pointer:{where}/text]"
        )
    for flag in ("emoji", "verbatim"):
        if flag in obj and not isinstance(obj[flag], bool):
            problems.append(f"must be a boolean [json-pointer:{where}/{flag}]")
    return problems


def _check_block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must be an object [json-pointer:{where}]"]
    kind = block.get("type")
    problems: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > BLOCK_ID_MAX):
        problems.append(
            f"block_id must be a string of at most 255 characters [json-pointer:{where}]"
        )
    if kind == "header":
        allowed = {"type", "text", "block_id"}
        problems += _check_text_object(
            block.get("text"), f"{where}/text", HEADER_TEXT_MAX, ("plain_text",)
        )
    elif kind == "section":
        allowed = {"type", "text", "fields", "block_id"}
        if "text" not in block and "fields" not in block:
            problems.append(f"must provide text or fields [json-pointer:{where}]")
        if "text" in block:
            problems += _check_text_object(
                block["text"], f"{where}/text", SECTION_TEXT_MAX, ("plain_text", "mrkdwn")
            )
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= SECTION_FIELDS_MAX:
                problems.append(
                    f"must be a list of 1 to 10 text objects [json-pointer:{where}/fields]"
                )
            else:
                for i, f in enumerate(fields):
                    problems += _check_text_object(
                        f, f"{where}/fields/{i}", FIELD_TEXT_MAX, ("plain_text", "mrkdwn")
                    )
    elif kind == "context":
        allowed = {"type", "elements", "block_id"}
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_ELEMENTS_MAX:
            problems.append(f"must be a list of 1 to 10 elements [json-pointer:{where}/elements]")
        else:
            for i, e in enumerate(elements):
                if isinstance(e, dict) and e.get("type") == "image":
                    if not e.get("image_url") or not e.get("alt_text"):
                        problems.append(
                            f"image needs image_url and alt_text [json-pointer:{where}/elements/{i}]"
                        )
                else:
                    problems += _check_text_object(
                        e, f"{where}/elements/{i}", SECTION_TEXT_MAX, ("plain_text", "mrkdwn")
                    )
    elif kind == "divider":
        allowed = {"type", "block_id"}
    else:
        return [f"unsupported block type {kind!r} [json-pointer:{where}/type]"]
    extra = set(block) - allowed
    if extra:
        problems.append(f"invalid additional property: {sorted(extra)} [json-pointer:{where}]")
    return problems


def check_blocks(blocks: Any) -> list[str]:
    """Why `blocks` is not valid Block Kit for a message (empty when it is)."""
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
        return ["blocks must be a list of 1 to 50 blocks [json-pointer:/blocks]"]
    problems = []
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(ids) != len(set(ids)):
        problems.append("block_id values must be unique [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        problems += _check_block(block, f"/blocks/{i}")
    return problems


def check_message(msg: Any) -> tuple[str, list[str]] | None:
    """(Slack's error code, details) when `msg` is not a valid chat.postMessage; else None."""
    if not isinstance(msg, dict):
        return "invalid_arguments", ["the body must be a JSON object"]
    extra = set(msg) - MESSAGE_KEYS
    if extra:
        return "invalid_arguments", [f"unknown arguments {sorted(extra)}"]
    if not isinstance(msg.get("channel"), str) or not msg["channel"].strip():
        return "channel_not_found", ["channel is required"]
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        # Slack posts blocks without text but warns: notifications and screen readers need it.
        return "no_text", ["text is required as the fallback of blocks"]
    if len(text) > MESSAGE_TEXT_MAX:
        return "msg_too_long", [f"text has {len(text)} characters"]
    if "blocks" in msg:
        problems = check_blocks(msg["blocks"])
        if problems:
            return "invalid_blocks", problems
    for flag in ("reply_broadcast", "unfurl_links", "unfurl_media", "mrkdwn", "link_names"):
        if flag in msg and not isinstance(msg[flag], bool):
            return "invalid_arguments", [f"{flag} must be a boolean"]
    if "thread_ts" in msg and not (
        isinstance(msg["thread_ts"], str) and _TS.fullmatch(msg["thread_ts"])
    ):
        return "invalid_thread_ts", [f"thread_ts {msg['thread_ts']!r} is not a message ts"]
    if msg.get("reply_broadcast") and "thread_ts" not in msg:
        return "invalid_arguments", ["reply_broadcast needs thread_ts"]
    meta = msg.get("metadata")
    if meta is not None and not (
        isinstance(meta, dict)
        and isinstance(meta.get("event_type"), str)
        and re.fullmatch(r"[a-z0-9_]+", meta["event_type"])
        and isinstance(meta.get("event_payload"), dict)
        and set(meta) <= {"event_type", "event_payload"}
    ):
        return "invalid_metadata_format", ["metadata needs event_type (a-z0-9_) and event_payload"]
    return None


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class SlackPeer(HttpPeer):
    """`SlackPeer(token="xoxb-...").start()` returns the API base URL for a destination's `url`."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.messages: list[SlackMessage] = []
        self.warnings: list[str] = []  # what Slack would warn about while posting
        self._channels: dict[str, str] = {}
        self._clock = itertools.count(1)

    @property
    def url(self) -> str:
        return self.base_url + "/api"

    def fail_next(self, times: int = 1, error: str = "fatal_error") -> None:
        """Refuse the next requests as Slack does: HTTP 200 with ok false."""
        self.inject(Reply(200, {"ok": False, "error": error}), times)

    def rate_limit_next(self, times: int = 1, retry_after: int = 1) -> None:
        self.inject(
            Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}),
            times,
        )

    def delete(self, ts: str) -> None:
        """Delete a message (and so its thread), as a person in the channel could."""
        with self._lock:
            self.messages = [m for m in self.messages if ts not in (m.ts, m.thread_ts)]

    def channel_id(self, name: str) -> str:
        """The ID this peer gives a channel named `#name` (or `name`)."""
        with self._lock:
            return self._channel_id(name)

    def _channel_id(self, name: str) -> str:
        if _CHANNEL_ID.fullmatch(name):
            return name
        key = name.lstrip("#").lower()
        return self._channels.setdefault(key, f"C{len(self._channels) + 1:08d}")

    def top_level(self) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts is None]

    def replies(self, ts: str) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def _refuse(self, error: str, details: list[str] | None = None) -> Reply:
        self.reject(f"{error}: {'; '.join(details or [])}")
        body: dict[str, Any] = {"ok": False, "error": error}
        if details:
            body["errors"] = details
        return Reply(200, body)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        if path.split("?")[0] != "/api/chat.postMessage":
            return Reply(404, {"ok": False, "error": "unknown_method"})
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self._refuse("not_authed", ["no Authorization: Bearer token"])
        token = auth.removeprefix("Bearer ").strip()
        if not token.startswith("xoxb-") or (self.token is not None and token != self.token):
            return self._refuse("invalid_auth", ["the token is not this app's bot token (xoxb-)"])
        if media_type(headers) != "application/json":
            return self._refuse(
                "invalid_form_data", [f"content-type {headers.get('content-type')!r}"]
            )
        warnings = []
        if "charset" not in headers.get("content-type", "").lower():
            warnings.append("missing_charset")  # Slack posts, and warns
        msg, problem = json_body(raw)
        if problem:
            return self._refuse("invalid_json", [problem])
        refused = check_message(msg)
        if refused:
            return self._refuse(*refused)
        with self._lock:
            channel = self._channel_id(msg["channel"])
            thread_ts = msg.get("thread_ts")
            parent_known = thread_ts is None or any(
                m.ts == thread_ts and m.channel == channel and m.thread_ts is None
                for m in self.messages
            )
            ts = f"{int(time.time())}.{next(self._clock):06d}"
            if parent_known:
                self.messages.append(
                    SlackMessage(
                        channel,
                        ts,
                        msg["text"],
                        msg.get("blocks") or [],
                        thread_ts,
                        msg.get("metadata"),
                        msg,
                    )
                )
                self.warnings += warnings
        if not parent_known:
            return self._refuse(
                "thread_not_found", [f"no top-level message {thread_ts} in {channel}"]
            )
        message = {"type": "message", "text": msg["text"], "ts": ts, "bot_id": "B00000001"}
        if thread_ts:
            message["thread_ts"] = thread_ts
        body: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": message}
        if warnings:
            body["warning"] = ",".join(warnings)
            body["response_metadata"] = {"warnings": warnings}
        return Reply(200, body)
