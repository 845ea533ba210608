"""Duo Admin API authentication log (v2, one record per line) -> ECS.

`isotimestamp` (microseconds) is preferred over `timestamp` (epoch seconds). Results `denied`,
`fraud` and `error` are failures. A `fraud` result (the user reported the push as fraud) stays
an ordinary event: `duo.auth.result` and `event.reason` carry it, and detections decide.
Device posture fields that Duo sends as booleans or as "unknown" are kept as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
from tarn.logsources._schema import TS
from tarn.logsources.helpers import JSON_ENCODER, json_text_nonempty, strict_ip_or_none

_OUTCOME = {"success": "success", "denied": "failure", "fraud": "failure", "error": "failure"}


_ip = lru_cache(maxsize=4096)(strict_ip_or_none)


def _iso_ts(iso: Any) -> datetime | None:
    """The time `isotimestamp` gives, None where it gives none (then the epoch seconds count)."""
    if isinstance(iso, str) and iso:
        try:
            ts = datetime.fromisoformat(iso)
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        except ValueError:
            pass  # fall back to the epoch seconds
    return None


def _ts(record: dict[str, Any]) -> datetime:
    ts = _iso_ts(record.get("isotimestamp"))
    if ts is not None:
        return ts
    epoch = record.get("timestamp")
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(epoch, UTC)
    raise ValueError("Duo record has neither a valid isotimestamp nor an epoch timestamp")


def _text(value: Any) -> str | None:
    """Duo sends booleans for some device posture fields and 'unknown' strings for others."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dict(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a Duo authentication log is a JSON object, got {type(record).__name__}")
    if "result" not in record or ("timestamp" not in record and "isotimestamp" not in record):
        raise ValueError("not a Duo authentication log: result and timestamp are required")
    user = _dict(record, "user")
    access = _dict(record, "access_device")
    auth_device = _dict(record, "auth_device")
    application = _dict(record, "application")
    where = _dict(access, "location")
    auth_where = _dict(auth_device, "location")
    result = record.get("result")
    reason = record.get("reason")
    name = user.get("name") or record.get("username")
    email = record.get("email") or None
    alias = record.get("alias") or None
    access_ip = _ip(access.get("ip"))
    auth_ip = _ip(auth_device.get("ip"))
    hostname = access.get("hostname") or None
    groups = user.get("groups")

    return {
        "ts": _ts(record),
        "event": {
            "id": record.get("txid"),
            "kind": "event",
            "action": record.get("event_type") or record.get("eventtype") or "authentication",
            "category": ["authentication"],
            "type": ["info"],
            "outcome": _OUTCOME.get(str(result), "unknown"),
            "reason": reason,
            "provider": "duo",
        },
        "user": {"name": name, "id": user.get("key"), "email": email},
        "source": {
            "ip": access_ip,
            "address": access.get("ip") or None,
            "domain": hostname,
            "geo": {
                "city_name": where.get("city") or None,
                "region_name": where.get("state") or None,
                "country_name": where.get("country") or None,
            },
        },
        "user_agent": {
            "name": access.get("browser") or None,
            "version": access.get("browser_version") or None,
            "os": {"name": access.get("os") or None, "version": access.get("os_version") or None},
        },
        "duo": {
            "auth": {
                "result": result,
                "reason": reason,
                "factor": record.get("factor"),
                "alias": alias,
                "trusted_endpoint_status": record.get("trusted_endpoint_status"),
                "ood_software": _text(record.get("ood_software")),
                "application": {"name": application.get("name"), "key": application.get("key")},
                "user": {"groups": groups if isinstance(groups, list) else []},
                "access_device": {
                    "hostname": hostname,
                    "epkey": access.get("epkey"),
                    "is_encryption_enabled": _text(access.get("is_encryption_enabled")),
                    "is_firewall_enabled": _text(access.get("is_firewall_enabled")),
                    "is_password_set": _text(access.get("is_password_set")),
                    "flash_version": _text(access.get("flash_version")),
                    "java_version": _text(access.get("java_version")),
                    "security_agents": json_text_nonempty(
                        access.get("security_agents"), sort_keys=True
                    ),
                },
                "auth_device": {
                    "name": auth_device.get("name"),
                    "key": auth_device.get("key"),
                    "ip": auth_ip,
                    "location": {
                        "city": auth_where.get("city") or None,
                        "state": auth_where.get("state") or None,
                        "country": auth_where.get("country") or None,
                    },
                },
                "adaptive_trust_assessments": json_text_nonempty(
                    record.get("adaptive_trust_assessments"), sort_keys=True
                ),
            }
        },
        "related": {
            "ip": [ip for ip in dict.fromkeys((access_ip, auth_ip)) if ip],
            "user": [u for u in dict.fromkeys((name, email, alias)) if u],
            "hosts": [hostname] if hostname else [],
        },
    }


# -- the same rows, a batch at a time (see tarn.logsources.columnar) ------------------------------
# access_device fields kept as _text (Duo sends booleans or text)
_TEXTS = (
    "is_encryption_enabled",
    "is_firewall_enabled",
    "is_password_set",
    "flash_version",
    "java_version",
)


def _epoch_ts(epoch: float) -> datetime | None:
    """datetime.fromtimestamp(epoch, UTC), None where it raises (transform() says why)."""
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _texts(values: list[Any]) -> pa.Array:
    """_text per value."""
    return pa.array([(v or None) if type(v) is str else _text(v) for v in values], pa.string())


_NOTHING: tuple[Any, ...] = (None, {}, [])  # what json_text_nonempty gives None for


def _json_texts(values: list[Any]) -> pa.Array:
    """json_text_nonempty(sort_keys=True) per value (the encoder it uses first, as bytes)."""
    encode = JSON_ENCODER.encode
    try:
        texts: list[Any] = [None if v in _NOTHING else encode(v) for v in values]
    except (TypeError, ValueError, UnicodeError, OverflowError):
        texts = [json_text_nonempty(v, sort_keys=True) for v in values]
    return pa.array(texts, pa.string())


def _or_none(values: pa.Array) -> pa.Array:
    """`value or None` per value."""
    return pc.if_else(col.truthy(values), values, None)


@col.columnar(
    raw={
        "isotimestamp": "string",
        "timestamp": "double",
        "result": "string",
        "reason": "string",
        "txid": "string",
        "event_type": "string",
        "eventtype": "string",
        "username": "string",
        "email": "string",
        "alias": "string",
        "factor": "string",
        "trusted_endpoint_status": "string",
        "ood_software": "json",
        "adaptive_trust_assessments": "json",
        "user.name": "string",
        "user.key": "string",
        "user.groups": "list<string>",
        "application.name": "string",
        "application.key": "string",
        "access_device.ip": "string",
        "access_device.hostname": "string",
        "access_device.browser": "string",
        "access_device.browser_version": "string",
        "access_device.os": "string",
        "access_device.os_version": "string",
        "access_device.epkey": "string",
        "access_device.location.city": "string",
        "access_device.location.state": "string",
        "access_device.location.country": "string",
        "access_device.security_agents": "json",
        **{f"access_device.{key}": "json" for key in _TEXTS},
        "auth_device.name": "string",
        "auth_device.key": "string",
        "auth_device.ip": "string",
        "auth_device.location.city": "string",
        "auth_device.location.state": "string",
        "auth_device.location.country": "string",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute."""
    result = batch["result"]
    iso_ts, iso_raises = col.timestamps_checked(batch["isotimestamp"], _iso_ts)
    epoch = pc.if_else(pc.is_null(iso_ts), batch["timestamp"], None)
    ts = pc.coalesce(iso_ts, col.per_value(_epoch_ts, epoch, TS))  # null: transform() says why

    name = col.either(batch["user.name"], batch["username"])
    email = _or_none(batch["email"])
    alias = _or_none(batch["alias"])
    access_ip = col.per_value(_ip, batch["access_device.ip"], pa.string())
    auth_ip = col.per_value(_ip, batch["auth_device.ip"], pa.string())
    hostname = _or_none(batch["access_device.hostname"])
    action = col.either(batch["event_type"], batch["eventtype"])
    action = pc.if_else(col.truthy(action), action, "authentication")
    groups = pc.fill_null(batch["user.groups"], pa.scalar([], pa.list_(pa.string())))
    reason = batch["reason"]
    auth = "duo.auth."
    device = auth + "access_device."
    return {
        # no result (missing or null: only transform() tells them apart), or an isotimestamp
        # that makes _ts raise (e.g. OverflowError): transform() sidelines those
        col.ROW_PATH: pc.or_(pc.is_null(result), iso_raises),
        "ts": ts,
        "event.id": batch["txid"],
        "event.kind": "event",
        "event.action": action,
        "event.category": ["authentication"],
        "event.type": ["info"],
        "event.outcome": col.lookup(result, _OUTCOME, "unknown", pa.string()),
        "event.reason": reason,
        "event.provider": "duo",
        "user.name": name,
        "user.id": batch["user.key"],
        "user.email": email,
        "source.ip": access_ip,
        "source.address": _or_none(batch["access_device.ip"]),
        "source.domain": hostname,
        "source.geo.city_name": _or_none(batch["access_device.location.city"]),
        "source.geo.region_name": _or_none(batch["access_device.location.state"]),
        "source.geo.country_name": _or_none(batch["access_device.location.country"]),
        "user_agent.name": _or_none(batch["access_device.browser"]),
        "user_agent.version": _or_none(batch["access_device.browser_version"]),
        "user_agent.os.name": _or_none(batch["access_device.os"]),
        "user_agent.os.version": _or_none(batch["access_device.os_version"]),
        auth + "result": result,
        auth + "reason": reason,
        auth + "factor": batch["factor"],
        auth + "alias": alias,
        auth + "trusted_endpoint_status": batch["trusted_endpoint_status"],
        auth + "ood_software": _texts(batch.values("ood_software")),
        auth + "application.name": batch["application.name"],
        auth + "application.key": batch["application.key"],
        auth + "user.groups": groups,
        device + "hostname": hostname,
        device + "epkey": batch["access_device.epkey"],
        **{device + key: _texts(batch.values(f"access_device.{key}")) for key in _TEXTS},
        device + "security_agents": _json_texts(batch.values("access_device.security_agents")),
        auth + "auth_device.name": batch["auth_device.name"],
        auth + "auth_device.key": batch["auth_device.key"],
        auth + "auth_device.ip": auth_ip,
        auth + "auth_device.location.city": _or_none(batch["auth_device.location.city"]),
        auth + "auth_device.location.state": _or_none(batch["auth_device.location.state"]),
        auth + "auth_device.location.country": _or_none(batch["auth_device.location.country"]),
        auth + "adaptive_trust_assessments": _json_texts(
            batch.values("adaptive_trust_assessments")
        ),
        "related.ip": col.unique_values(access_ip, auth_ip),
        "related.user": col.unique_values(name, email, alias),
        "related.hosts": col.unique_values(hostname),
    }
