"""Slack: Block Kit messages through `chat.postMessage` with a bot token.

An alert's first message starts a thread; each update is a reply in it (`thread_ts`), so a
channel shows one message per alert. Slack answers errors with HTTP 200 and `ok: false`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from tarn.config import DestinationConfig
from tarn.destinations import _threads
from tarn.destinations._common import (
    clip,
    env_name,
    one_line,
    post,
    require,
    severity_of,
    technique,
)
from tarn.destinations.exceptions import DeliveryError

if TYPE_CHECKING:
    from tarn.runtime import Context

SLACK_API_URL = "https://slack.com/api"

# Block Kit limits (characters)
HEADER_TEXT_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FALLBACK_TEXT_LIMIT = 3000  # Slack keeps up to 40,000; notifications show far fewer

SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_yellow_circle:",
    "info": ":large_blue_circle:",
}
METADATA_EVENT_TYPE = "tarn_alert"
_AUTH_ERRORS = {"not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive"}


def escape(text: str) -> str:
    """Slack's mrkdwn and plain_text treat &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped(text: str, limit: int) -> str:
    """`text` escaped and clipped to `limit`, never cutting an entity in half."""
    out = escape(text)
    if len(out) <= limit:
        return out
    out = out[: limit - 1]
    amp = out.rfind("&")
    if amp != -1 and ";" not in out[amp:]:
        out = out[:amp]
    return out + "…"


def slack_date(iso: str) -> str:
    """A date each reader sees in their own time zone, with the ISO text as the fallback."""
    try:
        epoch = int(datetime.fromisoformat(iso).timestamp())
    except (TypeError, ValueError):
        return escape(str(iso))
    return f"<!date^{epoch}^{{date_short_pretty}} {{time_secs}}|{escape(iso)}>"


def tag_text(tag: str) -> str:
    """A MITRE ATT&CK technique tag as a link to its page; any other tag as code."""
    known = technique(tag)
    if known is None:
        return f"`{escape(tag)}`"
    label, url = known
    return f"<{url}|{label}>"


def _tags_text(tags: list[str], limit: int) -> str:
    """As many whole tags as fit in `limit` (a cut link would break the text), then a count."""
    shown: list[str] = []
    used = 0
    for i, tag in enumerate(tags):
        text = tag_text(tag)
        rest = f" +{len(tags) - i} more"
        if used + len(text) + 1 + len(rest) > limit:
            return " ".join(shown) + rest
        shown.append(text)
        used += len(text) + 1
    return " ".join(shown)


def _text(kind: str, text: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": kind, "text": text}
    if kind == "plain_text":
        obj["emoji"] = True
    return obj


def _field(label: str, value: str) -> dict[str, Any]:
    return _text("mrkdwn", clip(f"*{label}*\n{value}", FIELD_TEXT_LIMIT))


def fallback_text(alert: dict[str, Any]) -> str:
    sev = severity_of(alert).upper()
    title = one_line(alert.get("title") or alert.get("name") or alert["detection"])
    text = (
        f"[{sev}] {title} ({alert.get('action', 'created')}, "
        f"{alert.get('match_count', 0)} matches, {alert['detection']})"
    )
    return _escaped(text, FALLBACK_TEXT_LIMIT)


def slack_blocks(alert: dict[str, Any], *, in_thread: bool = False) -> list[dict[str, Any]]:
    """The alert as Block Kit: a full card, or (for an update in its thread) a compact one."""
    sev = severity_of(alert)
    emoji = SEVERITY_EMOJI[sev]
    title = one_line(alert.get("title") or alert.get("name") or alert["detection"])
    action = alert.get("action", "created")
    count = f"{alert.get('match_count', 0)} (threshold {alert.get('threshold', 1)})"
    blocks: list[dict[str, Any]] = []
    if in_thread:
        line = (
            f"{emoji} *{action.capitalize()}* (version {alert.get('version', '?')}): "
            f"{alert.get('match_count', 0)} matches, last {slack_date(alert.get('last_matched', ''))}"
        )
        blocks.append({"type": "section", "text": _text("mrkdwn", line)})
        fields = [
            _field("Severity", sev.upper()),
            _field("Title", _escaped(title, FIELD_TEXT_LIMIT - 16)),
        ]
    else:
        prefix = "Updated: " if action == "updated" else ""
        header = clip(f"{emoji} {prefix}{title}", HEADER_TEXT_LIMIT)
        blocks.append({"type": "header", "text": _text("plain_text", header)})
        fields = [
            _field("Severity", sev.upper()),
            _field("Detection", f"`{_escaped(alert['detection'], FIELD_TEXT_LIMIT - 32)}`"),
            _field("Matches", count),
            _field("Entity", _escaped(str(alert.get("dedupe", "")) or "-", FIELD_TEXT_LIMIT - 16)),
            _field("First matched", slack_date(alert.get("first_matched", ""))),
            _field("Last matched", slack_date(alert.get("last_matched", ""))),
        ]
    blocks.append({"type": "section", "fields": fields})
    context = alert.get("context") or {}
    if context:
        dumped = json.dumps(context, indent=2, sort_keys=True, default=str)
        body = _escaped(dumped, SECTION_TEXT_LIMIT - len("*Context*\n``````"))
        blocks.append({"type": "section", "text": _text("mrkdwn", f"*Context*\n```{body}```")})
    runbook = str(alert.get("runbook") or "").strip()
    if runbook and not in_thread:
        body = _escaped(runbook, SECTION_TEXT_LIMIT - len("*Runbook*\n"))
        blocks.append({"type": "section", "text": _text("mrkdwn", f"*Runbook*\n{body}")})
    footer = [_text("mrkdwn", f"tarn alert `{escape(str(alert['alert_id']))}` · {escape(action)}")]
    tags = _tags_text(alert.get("tags") or [], FIELD_TEXT_LIMIT)
    if tags:
        footer.append(_text("mrkdwn", tags))
    blocks.append({"type": "divider"})
    blocks.append({"type": "context", "elements": footer})
    return blocks


def slack_message(
    alert: dict[str, Any],
    event_id: str,
    *,
    channel: str,
    thread_ts: str | None = None,
    reply_broadcast: bool = False,
) -> dict[str, Any]:
    """The chat.postMessage arguments for one alert update."""
    msg: dict[str, Any] = {
        "channel": channel,
        "text": fallback_text(alert),
        "blocks": slack_blocks(alert, in_thread=thread_ts is not None),
        "unfurl_links": False,
        "unfurl_media": False,
        # Message metadata lets anyone reading the channel find the update an event produced.
        "metadata": {
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {
                "alert_id": str(alert["alert_id"]),
                "event_id": event_id,
                "version": int(alert.get("version") or 0),
                "action": str(alert.get("action", "created")),
            },
        },
    }
    if thread_ts is not None:
        msg["thread_ts"] = thread_ts
        if reply_broadcast:
            msg["reply_broadcast"] = True
    return msg


class _ThreadGone(DeliveryError):
    pass


def _answer(name: str, dest: DestinationConfig, resp: httpx.Response) -> dict[str, Any]:
    """Slack's answer as a mapping, or a DeliveryError saying what it refused and why."""
    if resp.status_code == 429:
        raise DeliveryError(
            f"destination {name!r}: Slack rate-limited chat.postMessage (HTTP 429, "
            f"Retry-After {resp.headers.get('Retry-After', '?')}s); the broker retries later"
        )
    if resp.status_code >= 300:
        raise DeliveryError(
            f"destination {name!r}: Slack answered HTTP {resp.status_code}: {resp.text[:200]}"
        )
    try:
        body = resp.json()
    except ValueError:
        raise DeliveryError(
            f"destination {name!r}: Slack's answer is not JSON: {resp.text[:200]}"
        ) from None
    if not isinstance(body, dict):
        raise DeliveryError(f"destination {name!r}: Slack's answer is not an object: {body!r:.200}")
    if body.get("ok") is True:
        if not body.get("ts") or not body.get("channel"):
            raise DeliveryError(f"destination {name!r}: Slack's answer lacks ts or channel")
        return body
    error = str(body.get("error") or "unknown_error")
    detail = "; ".join(str(e) for e in body.get("errors") or [])
    hint = ""
    if error in _AUTH_ERRORS:
        hint = f"; check the bot token ({env_name(name, 'token')})"
    elif error in ("channel_not_found", "not_in_channel", "is_archived"):
        hint = f"; invite the app to the channel or fix {env_name(name, 'channel')}"
    elif error == "missing_scope":
        hint = f"; grant the app the scope {body.get('needed') or 'chat:write'}"
    msg = f"destination {name!r}: Slack refused chat.postMessage: {error}{': ' + detail if detail else ''}{hint}"
    if error == "thread_not_found":
        raise _ThreadGone(msg + "; the next attempt starts a new thread")
    raise DeliveryError(msg)


def send_slack(
    ctx: Context, name: str, dest: DestinationConfig, alert: dict[str, Any], event_id: str
) -> None:
    """Post the alert update; the first one of an alert starts its thread, the rest reply in it."""
    require(name, dest, "token", "channel")
    assert dest.channel is not None
    alert_id = str(alert["alert_id"])
    root = _threads.begin(ctx, name, alert_id, event_id, scope=dest.channel)
    payload = slack_message(
        alert,
        event_id,
        channel=root["channel"] if root else dest.channel,
        thread_ts=root["ts"] if root else None,
        reply_broadcast=dest.reply_broadcast,
    )
    headers = {
        "Authorization": f"Bearer {dest.token}",
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "tarn-alert-forwarder",
    }
    url = (dest.url or SLACK_API_URL).rstrip("/") + "/chat.postMessage"
    try:
        resp = post(ctx, name, url, headers=headers, content=json.dumps(payload).encode())
        answer = _answer(name, dest, resp)
    except BaseException as exc:
        if root is None:
            _threads.release(ctx, name, alert_id, event_id, scope=dest.channel)
        elif isinstance(exc, _ThreadGone):
            _threads.forget(ctx, name, alert_id, root, scope=dest.channel)
        raise
    if root is None:
        new_root = {"channel": answer["channel"], "ts": answer["ts"]}
        _threads.commit(ctx, name, alert_id, event_id, new_root, scope=dest.channel)
