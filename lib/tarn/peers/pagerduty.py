"""A local PagerDuty Events API v2 (`POST /v2/enqueue`) that checks events as PagerDuty does.

It wants a 32-character routing_key, an event_action, a dedup_key of at most 255 characters,
and for a trigger a payload with a summary (at most 1024 characters), a source, a severity
(critical, error, warning, info) and an ISO 8601 timestamp. It answers 202 with the dedup_key
like PagerDuty, 400 with the reasons for an invalid event, and keeps one incident per dedup_key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tarn.peers._http import HttpPeer, Reply, json_body, media_type

ROUTING_KEY_LENGTH = 32
DEDUP_KEY_MAX = 255
SUMMARY_MAX = 1024
EVENT_MAX_BYTES = 512 * 1024
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
EVENT_KEYS = {
    "routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url",
}  # fmt: skip
PAYLOAD_KEYS = {
    "summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details",
}  # fmt: skip


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_payload(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    extra = set(payload) - PAYLOAD_KEYS
    if extra:
        errors.append(f"'payload' has unknown fields {sorted(extra)}")
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_MAX:
        errors.append(f"'payload.summary' is longer than {SUMMARY_MAX} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            f"'payload.severity' is invalid (must be one of {', '.join(SEVERITIES)}): "
            f"{payload.get('severity')!r}"
        )
    if "timestamp" in payload and not _iso8601(payload["timestamp"]):
        errors.append(f"'payload.timestamp' is not ISO 8601: {payload['timestamp']!r}")
    for key in ("component", "group", "class"):
        if key in payload and not isinstance(payload[key], str):
            errors.append(f"'payload.{key}' must be a string")
    return errors


def check_event(event: Any) -> list[str]:
    """Why `event` is not a valid Events API v2 event (empty when it is)."""
    if not isinstance(event, dict):
        return ["Event object is invalid: not a JSON object"]
    errors = []
    extra = set(event) - EVENT_KEYS
    if extra:
        errors.append(f"unknown fields {sorted(extra)}")
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
        errors.append(
            f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)"
        )
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of {', '.join(ACTIONS)})")
    dedup = event.get("dedup_key")
    if dedup is not None and (
        not isinstance(dedup, str) or not dedup or len(dedup) > DEDUP_KEY_MAX
    ):
        errors.append(f"'dedup_key' must be a string of 1 to {DEDUP_KEY_MAX} characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        errors += _check_payload(event.get("payload"))
    for i, link in enumerate(event.get("links") or []):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append(f"'links[{i}]' needs an href")
        elif set(link) - {"href", "text"}:
            errors.append(f"'links[{i}]' has unknown fields")
    for i, image in enumerate(event.get("images") or []):
        if not isinstance(image, dict) or not str(image.get("src", "")).startswith("https://"):
            errors.append(f"'images[{i}]' needs an https src")
    for key in ("client", "client_url"):
        if key in event and not isinstance(event[key], str):
            errors.append(f"'{key}' must be a string")
    return errors


@dataclass
class Incident:
    dedup_key: str
    status: str = "triggered"
    events: list[dict[str, Any]] = field(default_factory=list)


class PagerDutyPeer(HttpPeer):
    """`PagerDutyPeer().start()` returns the enqueue URL for a destination's `url`."""

    def __init__(self, routing_key: str | None = None) -> None:
        super().__init__()
        self.routing_key = routing_key  # when set, other keys are refused
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, Incident] = {}

    @property
    def url(self) -> str:
        return self.base_url + "/v2/enqueue"

    def fail_next(self, times: int = 1, status: int = 500) -> None:
        """Answer the next requests with a server error (or 429 when status=429)."""
        headers = {"Retry-After": "1"} if status == 429 else {}
        body = {"status": "throttle event", "message": "Requests for this service are arriving too quickly."} if status == 429 else {"status": "error", "message": "Internal server error"}  # fmt: skip
        self.inject(Reply(status, body, headers), times)

    def _invalid(self, errors: list[str]) -> Reply:
        self.reject("; ".join(errors))
        return Reply(
            400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        )

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        if path.split("?")[0] != "/v2/enqueue":
            return Reply(404, {"status": "not found", "message": f"no route {path}"})
        if media_type(headers) != "application/json":
            return self._invalid(
                [f"Content-Type must be application/json: {headers.get('content-type')!r}"]
            )
        if len(raw) > EVENT_MAX_BYTES:
            return self._invalid([f"the event is larger than {EVENT_MAX_BYTES} bytes"])
        event, problem = json_body(raw)
        if problem:
            return self._invalid([problem])
        errors = check_event(event)
        if not errors and self.routing_key is not None and event["routing_key"] != self.routing_key:
            errors = ["Invalid routing key"]
        if errors:
            return self._invalid(errors)
        dedup = event.get("dedup_key") or uuid.uuid4().hex
        with self._lock:
            self.events.append(event)
            incident = self.incidents.get(dedup)
            if event["event_action"] == "trigger":
                if incident is None or incident.status == "resolved":
                    incident = self.incidents[dedup] = Incident(dedup)
                incident.events.append(event)
            elif incident is not None and incident.status != "resolved":
                incident.status = (
                    "acknowledged" if event["event_action"] == "acknowledge" else "resolved"
                )
                incident.events.append(event)
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})
