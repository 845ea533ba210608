"""PagerDuty: Events API v2 `trigger` events, `dedup_key` = the alert id.

Every update of an alert triggers with the same dedup_key, so PagerDuty keeps one incident per
alert and adds each update to its log; a repeated event changes nothing there either.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tarn.config import DestinationConfig
from tarn.destinations._common import clip, env_name, one_line, post, severity_of, technique
from tarn.destinations.exceptions import DeliveryError, DestinationConfigError

if TYPE_CHECKING:
    from tarn.runtime import Context

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
ROUTING_KEY_LENGTH = 32
CUSTOM_DETAILS_LIMIT = 256 * 1024  # bytes of JSON; the whole event may be at most 512 KiB

# tarn's five severities onto PagerDuty's four
SEVERITY = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "info": "info",
}


def _custom_details(alert: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    details = {
        "alert_id": alert["alert_id"],
        "event_id": event_id,
        "detection": alert["detection"],
        "name": alert.get("name"),
        "severity": alert.get("severity"),
        "action": alert.get("action"),
        "version": alert.get("version"),
        "dedupe": alert.get("dedupe"),
        "match_count": alert.get("match_count"),
        "threshold": alert.get("threshold"),
        "first_matched": alert.get("first_matched"),
        "last_matched": alert.get("last_matched"),
        "tags": alert.get("tags") or [],
        "runbook": alert.get("runbook") or None,
        "record_refs": (alert.get("record_refs") or [])[:20],
        "context": alert.get("context") or {},
    }
    text = json.dumps(details, default=str)
    if len(text.encode()) > CUSTOM_DETAILS_LIMIT:
        context = json.dumps(details["context"], default=str)
        details["context"] = {"truncated": True, "preview": context[: CUSTOM_DETAILS_LIMIT // 4]}
    return json.loads(json.dumps(details, default=str))


def _links(alert: dict[str, Any]) -> list[dict[str, str]]:
    links = []
    runbook = str(alert.get("runbook") or "").strip()
    if runbook.startswith(("https://", "http://")) and not any(c.isspace() for c in runbook):
        links.append({"href": runbook, "text": "Runbook"})
    for tag in alert.get("tags") or []:
        known = technique(tag)
        if known:
            links.append({"href": known[1], "text": f"MITRE ATT&CK {known[0]}"})
    return links


def pagerduty_event(
    alert: dict[str, Any],
    routing_key: str,
    *,
    source: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The Events API v2 body that triggers (or updates) the alert's incident."""
    sev = severity_of(alert)
    title = one_line(alert.get("title") or alert.get("name") or alert["detection"])
    payload: dict[str, Any] = {
        "summary": clip(f"[tarn] [{sev.upper()}] {title}", SUMMARY_LIMIT),
        "source": source or "tarn",
        "severity": SEVERITY[sev],
        "component": str(alert.get("dedupe") or alert["detection"]),
        "class": str(alert["detection"]),
        "custom_details": _custom_details(alert, event_id),
    }
    if alert.get("last_matched"):
        payload["timestamp"] = alert["last_matched"]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": str(alert["alert_id"])[:DEDUP_KEY_LIMIT],
        "client": "tarn",
        "payload": payload,
    }
    links = _links(alert)
    if links:
        event["links"] = links
    return event


def send_pagerduty(
    ctx: Context, name: str, dest: DestinationConfig, alert: dict[str, Any], event_id: str
) -> None:
    """Trigger the alert's incident; PagerDuty answers 202 when it took the event."""
    routing_key = dest.routing_key or dest.token
    if not routing_key:
        raise DestinationConfigError(
            f"destination {name!r} (type pagerduty) needs a routing key: set "
            f"{env_name(name, 'routing_key')} (or {env_name(name, 'token')})"
        )
    if len(routing_key) != ROUTING_KEY_LENGTH:
        raise DestinationConfigError(
            f"destination {name!r}: a PagerDuty routing key has {ROUTING_KEY_LENGTH} characters, "
            f"this one {len(routing_key)}; copy the Integration Key of an Events API v2 integration"
        )
    body = pagerduty_event(alert, routing_key, source=dest.source, event_id=event_id)
    headers = {"Content-Type": "application/json", "User-Agent": "tarn-alert-forwarder"}
    resp = post(
        ctx,
        name,
        dest.url or PAGERDUTY_EVENTS_URL,
        headers=headers,
        content=json.dumps(body).encode(),
    )
    if resp.status_code == 202:
        return
    hint = ""
    if resp.status_code == 400:
        hint = " (PagerDuty rejected the event as invalid: retrying will not help until fixed)"
    elif resp.status_code == 429:
        hint = f" (rate-limited, Retry-After {resp.headers.get('Retry-After', '?')}s)"
    raise DeliveryError(
        f"destination {name!r}: PagerDuty answered HTTP {resp.status_code}{hint}: {resp.text[:300]}"
    )
