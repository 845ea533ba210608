"""Alert destinations: a registry of senders by destination type.

A sender delivers one alert update (a dev.tarn.alert.v1 event's data) to one configured
destination, or raises DeliveryError; tarn.alerting.forward() calls it at most once per
(destination, event) and the broker retries a failure with backoff, then dead-letters it.

| type | service | settings (TARN_DESTINATIONS__<NAME>__<SETTING>) |
| --- | --- | --- |
| webhook | any HTTPS endpoint: JSON, HMAC-SHA256 signed | url, secret |
| slack | Slack `chat.postMessage`, Block Kit, one thread per alert | token, channel, url, reply_broadcast |
| pagerduty | PagerDuty Events API v2, dedup_key = alert id | routing_key (or token), url, source |
| email | SMTP, one conversation per alert | host, port, from, to, username, password, starttls, tls |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tarn.config import DestinationConfig
from tarn.destinations._email import email_message, message_id, send_email
from tarn.destinations._pagerduty import PAGERDUTY_EVENTS_URL, pagerduty_event, send_pagerduty
from tarn.destinations._slack import SLACK_API_URL, send_slack, slack_message
from tarn.destinations._webhook import send_webhook, signature, webhook_body
from tarn.destinations.exceptions import DeliveryError, DestinationConfigError, ThreadBusyError

if TYPE_CHECKING:
    from tarn.runtime import Context

Sender = Callable[["Context", str, DestinationConfig, dict[str, Any], str], None]

# In the order the docs present them; an unknown type's error lists them in this order.
SENDERS: dict[str, Sender] = {
    "webhook": send_webhook,
    "slack": send_slack,
    "pagerduty": send_pagerduty,
    "email": send_email,
}


def sender_for(name: str, dest: DestinationConfig) -> Sender:
    """The sender of `dest`'s type; an unknown type is an error listing the known ones."""
    sender = SENDERS.get(dest.type)
    if sender is None:
        raise DestinationConfigError(
            f"destination {name!r}: unknown type {dest.type!r}; known: {', '.join(SENDERS)}"
        )
    return sender


__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "SENDERS",
    "SLACK_API_URL",
    "DeliveryError",
    "DestinationConfigError",
    "Sender",
    "ThreadBusyError",
    "email_message",
    "message_id",
    "pagerduty_event",
    "send_email",
    "send_pagerduty",
    "send_slack",
    "send_webhook",
    "sender_for",
    "signature",
    "slack_message",
    "webhook_body",
]
