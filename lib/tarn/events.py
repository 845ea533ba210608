"""CloudEvent types tarn speaks, who emits them, and deterministic event construction.

An output event's id is derived from its input's id and a position, so a handler that is
retried emits the very same ids and the broker (Nats-Msg-Id) drops the duplicates.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

SOURCE_PREFIX = "/tarn"

OBJECT_RAW = "dev.tarn.object.raw.v1"
BATCH_NORMALIZED = "dev.tarn.batch.normalized.v1"
BATCH_DETECTED = "dev.tarn.batch.detected.v1"
LAKE_COMMITTED = "dev.tarn.lake.committed.v1"
RULE_MATCHED = "dev.tarn.rule.matched.v1"
ALERT = "dev.tarn.alert.v1"
ALERT_DELIVERED = "dev.tarn.alert.delivered.v1"

# What each function emits. A type with no Trigger must be listed in TERMINAL with why.
EMITS: dict[str, tuple[str, ...]] = {
    "ingestor": (OBJECT_RAW,),
    "transformer": (BATCH_NORMALIZED,),
    "lake_writer": (LAKE_COMMITTED,),
    "detector": (RULE_MATCHED, BATCH_DETECTED),
    "alert_manager": (ALERT,),
    "alert_forwarder": (ALERT_DELIVERED,),
    "scheduled_detections": (RULE_MATCHED,),
    "dead_letter": (),
}

TERMINAL: dict[str, str] = {
    LAKE_COMMITTED: "progress signal: `tarn ingest --wait` and benchmarks watch it on the broker stream",
    BATCH_DETECTED: "progress signal: `tarn ingest --wait` watches it to know detections have run",
    ALERT_DELIVERED: "audit trail of deliveries, kept on the broker stream",
}


def derive_id(parent_id: str, *position: object) -> str:
    """A stable id for the output at `position` of the event `parent_id`."""
    key = json.dumps([parent_id, *[str(p) for p in position]], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def make_event(
    type_: str,
    source: str,
    data: dict[str, Any],
    *,
    id_: str,
    subject: str | None = None,
    extensions: dict[str, str] | None = None,
) -> CloudEvent:
    attrs: dict[str, Any] = {
        "type": type_,
        "source": source if source.startswith("/") else f"{SOURCE_PREFIX}/{source}",
        "id": id_,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
    }
    if subject:
        attrs["subject"] = subject
    if extensions:
        attrs.update(extensions)
    return CloudEvent(attrs, data)


class BadEventError(ValueError):
    """An event whose data is not the JSON object its type promises."""


def data_of(event: CloudEvent) -> dict[str, Any]:
    """The event's data as a mapping (JSON text or bytes are decoded)."""
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise BadEventError(
                f"event {event['id']} ({event['type']}): data is not JSON: {exc}"
            ) from exc
    if not isinstance(data, dict):
        raise BadEventError(
            f"event {event['id']} ({event['type']}): data must be a JSON object, got {type(data).__name__}"
        )
    return data
