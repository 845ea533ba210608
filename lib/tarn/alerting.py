"""Alerts: matches grouped by (detection, dedupe key) within a window, and their delivery.

State lives in a JetStream key-value bucket, one key per (detection, dedupe), updated with
compare-and-set, so replicas racing on one alert lose no match and never create two alerts.
Each state remembers which rule.matched events it already counted: a redelivered event
changes nothing and re-emits the very same alert event (same id).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from cloudevents.http import CloudEvent

from tarn import events
from tarn.destinations import SENDERS as SENDERS
from tarn.destinations import DeliveryError as DeliveryError
from tarn.destinations import Sender as Sender
from tarn.destinations import send_webhook as send_webhook
from tarn.destinations import sender_for
from tarn.destinations import signature as _signature  # noqa: F401  (kept for callers)
from tarn.lake import ALERTS_TABLE
from tarn.logsources._schema import Field, arrow_schema
from tarn.runtime import Context

log = logging.getLogger("tarn.alerting")

APPLIED_MEMORY = 256  # rule.matched event ids remembered per alert key
MAX_REFS = 100  # record references kept per alert

ALERT_FIELDS = (
    Field("ts", "timestamp", "First match time (partition column)."),
    Field("alert_id", "keyword"),
    Field("detection", "keyword"),
    Field("name", "string"),
    Field("severity", "keyword"),
    Field("title", "string"),
    Field("dedupe", "keyword"),
    Field("first_matched", "timestamp"),
    Field("last_matched", "timestamp"),
    Field("match_count", "long"),
    Field("threshold", "long"),
    Field("version", "long"),
    Field("context", "json"),
    Field("runbook", "string"),
    Field("record_refs", "list<keyword>"),
    Field("destinations", "list<keyword>"),
    Field("tags", "list<keyword>"),
    Field("updated_at", "timestamp"),
)
ALERT_SCHEMA = arrow_schema(ALERT_FIELDS)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def alert_key(detection: str, dedupe: str) -> str:
    return hashlib.sha256(f"{detection}\x00{dedupe}".encode()).hexdigest()[:40]


def alert_id(detection: str, dedupe: str, first_ts: str) -> str:
    """Time-ordered ids: min/max statistics let an upsert skip all but the newest data files."""
    return f"{_ts(first_ts):%Y%m%dT%H%M%S}-{events.derive_id('alert', detection, dedupe, first_ts)[:20]}"


def apply_matches(
    state: dict[str, Any] | None,
    event_id: str,
    rule: dict[str, Any],
    dedupe: str,
    matches: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Fold `matches` (one dedupe group of one rule.matched event) into the alert state.

    Returns the new state, or None when this event was already applied.
    """
    state = state or {"current": None, "applied": {}}
    if event_id in state["applied"]:
        return None
    window = timedelta(minutes=rule["window_minutes"])
    cur = state["current"]
    touched: dict[str, dict[str, Any]] = {}
    for m in sorted(matches, key=lambda m: m["ts"]):
        ts = _ts(m["ts"])
        if cur is None or ts > _ts(cur["window_end"]):
            cur = {
                "alert_id": alert_id(rule["detection"], dedupe, m["ts"]),
                "detection": rule["detection"],
                "name": rule["name"],
                "dedupe": dedupe,
                "threshold": rule["threshold"],
                "first_matched": m["ts"],
                "last_matched": m["ts"],
                "window_end": (ts + window).isoformat(),
                "match_count": 0,
                "activated": False,
                "version": 0,
                "record_refs": [],
                "tags": rule.get("tags", []),
            }
        cur["match_count"] += 1
        if ts >= _ts(cur["last_matched"]):
            cur["last_matched"] = m["ts"]
        cur.update(
            title=m["title"],
            severity=m["severity"],
            context=m.get("context") or {},
            runbook=m.get("runbook", ""),
            destinations=m.get("destinations") or [],
        )
        ref = m.get("event_id") or f"{m.get('ingest_id')}#{m.get('position')}"
        if ref and len(cur["record_refs"]) < MAX_REFS:
            cur["record_refs"].append(ref)
        touched[cur["alert_id"]] = cur
    outputs = []
    for alert in touched.values():
        if alert["match_count"] >= alert["threshold"]:
            action = "updated" if alert["activated"] else "created"
            alert["activated"] = True
            alert["version"] += 1
            outputs.append(
                [alert["alert_id"], alert["version"], action, json.loads(json.dumps(alert))]
            )
    state["current"] = cur
    state["applied"][event_id] = outputs
    while len(state["applied"]) > APPLIED_MEMORY:
        state["applied"].pop(next(iter(state["applied"])))
    return state


def record(ctx: Context, event: CloudEvent) -> dict[str, Any]:
    """The lake writer's part: keep the alert's newest version as its row of tarn_alerts."""
    alert = events.data_of(event)
    rows = pa.Table.from_pylist([_alert_row(alert)], schema=ALERT_SCHEMA)
    ctx.lake.upsert_rows(ALERTS_TABLE, rows, "alert_id", ALERT_SCHEMA, version="version")
    return alert


def _alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": _ts(alert["first_matched"]),
        "alert_id": alert["alert_id"],
        "detection": alert["detection"],
        "name": alert["name"],
        "severity": alert["severity"],
        "title": alert["title"],
        "dedupe": alert["dedupe"],
        "first_matched": _ts(alert["first_matched"]),
        "last_matched": _ts(alert["last_matched"]),
        "match_count": alert["match_count"],
        "threshold": alert["threshold"],
        "version": alert["version"],
        "context": json.dumps(alert.get("context") or {}, sort_keys=True, default=str),
        "runbook": alert.get("runbook", ""),
        "record_refs": alert.get("record_refs", []),
        "destinations": alert.get("destinations", []),
        "tags": alert.get("tags", []),
        "updated_at": datetime.now(UTC),
    }


def _applier(
    event_id: str, rule: dict[str, Any], dedupe: str, matches: list[dict[str, Any]]
) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    return lambda state: apply_matches(state, event_id, rule, dedupe, matches)


def manage(ctx: Context, event: CloudEvent) -> list[dict[str, Any]]:
    """Apply one rule.matched event to the alert state; emit dev.tarn.alert.v1 for each change."""
    data = events.data_of(event)
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in data["matches"]:
        groups.setdefault(m["dedupe"], []).append(m)
    bucket = ctx.cfg.alerting.kv_bucket
    results: list[tuple[str, dict[str, Any]]] = []
    for dedupe, matches in groups.items():
        key = alert_key(data["detection"], dedupe)
        _, after = ctx.bus.kv_update_json(bucket, key, _applier(event["id"], data, dedupe, matches))
        assert after is not None
        for _aid, _version, action, snapshot in after["applied"].get(event["id"], []):
            results.append((action, snapshot))
    if not results:
        return []
    out = []
    for action, snapshot in results:
        body = {
            **{k: v for k, v in snapshot.items() if k not in ("activated", "window_end")},
            "action": action,
        }
        out.append(body)
    # The lake writer records each alert event in tarn_alerts (its own Trigger), so delivery
    # never waits for a table commit.
    ctx.emit(
        events.make_event(
            events.ALERT,
            "alert-manager",
            body,
            id_=events.derive_id(body["alert_id"], body["version"]),
            subject=body["alert_id"],
        )
        for body in out
    )
    return out


# -- delivery --------------------------------------------------------------------------------
# The senders live in tarn.destinations (registry SENDERS); forward() calls them at most once per
# (destination, alert event).


def destinations_for(ctx: Context, alert: dict[str, Any]) -> list[str]:
    names = (
        alert.get("destinations")
        or ctx.cfg.alerting.default_destinations
        or sorted(ctx.cfg.destinations)
    )
    unknown = [n for n in names if n not in ctx.cfg.destinations]
    if unknown:
        raise DeliveryError(
            f"alert {alert['alert_id']} names unknown destinations {unknown}; configured: {sorted(ctx.cfg.destinations) or 'none'}"
        )
    return list(names)


def forward(ctx: Context, event: CloudEvent) -> list[str]:
    """Deliver one alert event to each of its destinations, at most once per destination.

    Every destination is tried even when another fails; the failures are then raised together,
    so the broker retries the event and the destinations that already have it are skipped.
    """
    alert = events.data_of(event)
    delivered: list[str] = []
    failures: list[str] = []
    names = destinations_for(ctx, alert)
    if not names:
        log.warning(
            "alert %s: no destinations configured; it is only in %s",
            alert["alert_id"],
            ALERTS_TABLE,
        )
    bucket = ctx.cfg.alerting.deliveries_bucket
    for name in names:
        dest = ctx.cfg.destinations[name]
        key = events.derive_id("delivery", name, event["id"])
        try:
            sender = sender_for(name, dest)
            if ctx.bus.kv_get_json(bucket, key):
                continue  # this update already reached this destination
            sender(ctx, name, dest, alert, event["id"])
        except DeliveryError as exc:
            log.warning("alert %s: %s", alert["alert_id"], exc)
            failures.append(str(exc))
            continue
        except Exception as exc:
            log.exception("alert %s: destination %r failed", alert["alert_id"], name)
            failures.append(f"destination {name!r}: {type(exc).__name__}: {exc}")
            continue
        ctx.bus.kv_put_json(
            bucket,
            key,
            {"destination": name, "event_id": event["id"], "at": datetime.now(UTC).isoformat()},
        )
        delivered.append(name)
    if delivered:
        body = {
            "alert_id": alert["alert_id"],
            "version": alert.get("version"),
            "destinations": delivered,
        }
        ctx.emit(
            [
                events.make_event(
                    events.ALERT_DELIVERED,
                    "alert-forwarder",
                    body,
                    # One audit event per set delivered: a retry that reaches the rest is kept too.
                    id_=events.derive_id(event["id"], "delivered", *delivered),
                )
            ]
        )
    if failures:
        raise DeliveryError(
            f"alert {alert['alert_id']} (event {event['id']}): {len(failures)} of {len(names)} "
            f"destinations failed: " + " | ".join(failures)
        )
    return delivered
