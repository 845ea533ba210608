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

from tarn.logsources.helpers import json_text_nonempty, strict_ip_or_none

_OUTCOME = {"success": "success", "denied": "failure", "fraud": "failure", "error": "failure"}


_ip = lru_cache(maxsize=4096)(strict_ip_or_none)


def _ts(record: dict[str, Any]) -> datetime:
    iso = record.get("isotimestamp")
    if isinstance(iso, str) and iso:
        try:
            ts = datetime.fromisoformat(iso)
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        except ValueError:
            pass  # fall back to the epoch seconds
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
