"""Generic JSON webhook, signed with HMAC-SHA256 over `<timestamp>.<body>` when a secret is set."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from tarn.config import DestinationConfig
from tarn.destinations._common import post, require
from tarn.destinations.exceptions import DeliveryError

if TYPE_CHECKING:
    from tarn.runtime import Context


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_body(alert: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {"event_id": event_id, "action": alert["action"], "alert": alert}, sort_keys=True
    ).encode()


def send_webhook(
    ctx: Context, name: str, dest: DestinationConfig, alert: dict[str, Any], event_id: str
) -> None:
    """POST the alert; the receiver checks X-Tarn-Signature and drops a repeated Idempotency-Key."""
    require(name, dest, "url")
    assert dest.url is not None
    body = webhook_body(alert, event_id)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "tarn-alert-forwarder",
        "Idempotency-Key": event_id,
        "X-Tarn-Event-Id": event_id,
        "X-Tarn-Timestamp": timestamp,
    }
    if dest.secret:
        headers["X-Tarn-Signature"] = signature(dest.secret, timestamp, body)
    resp = post(ctx, name, dest.url, headers=headers, content=body)
    if resp.status_code >= 300:
        raise DeliveryError(
            f"destination {name!r}: webhook answered HTTP {resp.status_code}: {resp.text[:200]}"
        )
