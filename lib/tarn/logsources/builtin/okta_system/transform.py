"""Okta System Log event (LogEvent, as the System Log API returns it) -> ECS.

The actor is who did it (user.*), the first User among the targets whom it was done to
(user.target.*), the first UserGroup the group (user.target.group.*). client.ipAddress is the
source; request.ipChain adds any proxies to related.ip. debugContext.debugData varies by event
type: the useful keys get their own fields and the whole of it is kept as JSON.
"""

from __future__ import annotations

from typing import Any

from tarn.logsources.helpers import (
    as_dict,
    int_cast_or_none,
    iso_ts_or_none,
    json_text_nonempty,
    strict_ip_or_none,
)

_OUTCOMES = {
    "SUCCESS": "success",
    "ALLOW": "success",
    "FAILURE": "failure",
    "DENY": "failure",
    "CHALLENGE": "unknown",
    "SKIPPED": "unknown",
    "UNKNOWN": "unknown",
}

_AUTH = (["authentication"], ["info"])
_SESSION_START = (["authentication", "session"], ["start"])
_USER_CHANGE = (["iam"], ["user", "change"])
_ADMIN_CHANGE = (["iam"], ["user", "change", "admin"])
_GROUP_CHANGE = (["iam"], ["group", "change"])

# eventType -> (event.category, event.type)
_EVENT_TYPES: dict[str, tuple[list[str], list[str]]] = {
    "user.session.start": _SESSION_START,
    "user.session.end": (["authentication", "session"], ["end"]),
    "user.session.expire": (["session"], ["end"]),
    "user.session.clear": (["session"], ["end"]),
    "user.session.access_admin_app": (["session"], ["start", "admin"]),
    "user.authentication.sso": _SESSION_START,
    "policy.evaluate_sign_on": _AUTH,
    "system.push.send_factor_verify_push": _AUTH,
    "user.account.privilege.grant": _ADMIN_CHANGE,
    "user.account.privilege.revoke": _ADMIN_CHANGE,
    "user.account.lock": _USER_CHANGE,
    "user.account.unlock": _USER_CHANGE,
    "user.account.reset_password": _USER_CHANGE,
    "user.account.update_password": _USER_CHANGE,
    "user.account.update_profile": _USER_CHANGE,
    "user.lifecycle.create": (["iam"], ["user", "creation"]),
    "user.lifecycle.delete.initiated": (["iam"], ["user", "deletion"]),
    "user.lifecycle.activate": _USER_CHANGE,
    "user.lifecycle.deactivate": _USER_CHANGE,
    "user.lifecycle.suspend": _USER_CHANGE,
    "user.lifecycle.unsuspend": _USER_CHANGE,
    "user.mfa.factor.activate": _USER_CHANGE,
    "user.mfa.factor.deactivate": _USER_CHANGE,
    "user.mfa.factor.reset_all": _USER_CHANGE,
    "group.user_membership.add": _GROUP_CHANGE,
    "group.user_membership.remove": _GROUP_CHANGE,
    "group.privilege.grant": (["iam"], ["group", "change", "admin"]),
    "group.privilege.revoke": (["iam"], ["group", "change", "admin"]),
    "application.user_membership.add": _USER_CHANGE,
    "application.user_membership.remove": _USER_CHANGE,
    "system.api_token.create": (["iam", "configuration"], ["creation", "admin"]),
    "system.api_token.revoke": (["iam", "configuration"], ["deletion", "admin"]),
    "security.threat.detected": (["intrusion_detection"], ["info"]),
}
# Fallbacks by the first two parts of the eventType.
_PREFIXES: dict[str, tuple[list[str], list[str]]] = {
    "user.authentication": _AUTH,
    "user.mfa": _AUTH,
    "user.session": (["session"], ["info"]),
    "user.account": _USER_CHANGE,
    "user.lifecycle": _USER_CHANGE,
    "group.user_membership": _GROUP_CHANGE,
    "policy.lifecycle": (["configuration"], ["change"]),
    "policy.rule": (["configuration"], ["change"]),
    "zone.lifecycle": (["configuration"], ["change"]),
    "application.lifecycle": (["configuration"], ["change"]),
    "security.attack": (["intrusion_detection"], ["info"]),
}
_DEFAULT = (["configuration"], ["info"])
_ALERTS = frozenset(("security.threat.detected", "security.attack.start"))


def _risk_level(risk: Any) -> str | None:
    """'{reasons=New Geo-Location, New Device, level=HIGH}' -> 'HIGH'."""
    if not isinstance(risk, str):
        return None
    start = risk.find("level=")
    if start < 0:
        return None
    start += 6
    end = len(risk)
    for stop in (",", "}"):
        i = risk.find(stop, start)
        if 0 <= i < end:
            end = i
    return risk[start:end].strip() or None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _email(value: Any) -> str | None:
    return value if isinstance(value, str) and "@" in value else None


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"an Okta LogEvent is a JSON object, got {type(record).__name__}")
    event_type = record.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("not an Okta LogEvent: eventType is missing")
    ts = iso_ts_or_none(record.get("published"))
    if ts is None:
        raise ValueError(f"published is not an ISO 8601 time: {record.get('published')!r}")

    actor = as_dict(record.get("actor"))
    client = as_dict(record.get("client"))
    agent = as_dict(client.get("userAgent"))
    place = as_dict(client.get("geographicalContext"))
    outcome = as_dict(record.get("outcome"))
    auth = as_dict(record.get("authenticationContext"))
    issuer = as_dict(auth.get("issuer"))
    security = as_dict(record.get("securityContext"))
    debug = as_dict(as_dict(record.get("debugContext")).get("debugData"))
    transaction = as_dict(record.get("transaction"))
    targets = [t for t in record.get("target") or [] if isinstance(t, dict)]

    target_user: dict[str, Any] = {}
    target_group: dict[str, Any] = {}
    related_users = [actor.get("alternateId")]
    for target in targets:
        kind = target.get("type")
        if kind == "User":
            related_users.append(target.get("alternateId"))
            if not target_user:
                target_user = target
        elif kind == "UserGroup" and not target_group:
            target_group = target

    source_ip = strict_ip_or_none(client.get("ipAddress"))
    related_ip = [source_ip] if source_ip else []
    chain = record.get("request")
    chain = as_dict(chain).get("ipChain") or []
    for hop in chain:
        ip = strict_ip_or_none(as_dict(hop).get("ip"))
        if ip and ip not in related_ip:
            related_ip.append(ip)

    category, types = _EVENT_TYPES.get(event_type) or _PREFIXES.get(
        ".".join(event_type.split(".", 2)[:2]), _DEFAULT
    )
    result = outcome.get("result")
    browser = agent.get("browser")
    os_name = agent.get("os")
    actor_id = actor.get("alternateId")
    target_name = target_user.get("alternateId")
    zone = client.get("zone")

    return {
        "ts": ts,
        "message": record.get("displayMessage"),
        "log": {"level": record.get("severity")},
        "event": {
            "id": record.get("uuid"),
            "action": event_type,
            "kind": "alert" if event_type in _ALERTS else "event",
            "category": category,
            "type": types,
            "outcome": _OUTCOMES.get(result) if result else None,
            "reason": outcome.get("reason"),
        },
        "user": {
            "id": actor.get("id"),
            "name": actor_id,
            "full_name": actor.get("displayName"),
            "email": _email(actor_id),
            "target": {
                "id": target_user.get("id"),
                "name": target_name,
                "full_name": target_user.get("displayName"),
                "email": _email(target_name),
                "group": {"id": target_group.get("id"), "name": target_group.get("displayName")},
            },
        },
        "source": {
            "ip": source_ip,
            "geo": {
                "city_name": place.get("city"),
                "region_name": place.get("state"),
                "country_name": place.get("country"),
                "postal_code": place.get("postalCode"),
            },
            "as": {
                "number": int_cast_or_none(security.get("asNumber")),
                "organization": {"name": security.get("asOrg")},
            },
        },
        "user_agent": {
            "original": agent.get("rawUserAgent"),
            "name": browser if browser != "UNKNOWN" else None,
            "os": {"name": os_name if os_name != "Unknown" else None},
            "device": {"name": client.get("device")},
        },
        "okta": {
            "actor": {"type": actor.get("type")},
            "client": {"zone": zone if zone != "null" else None, "id": client.get("id")},
            "outcome": {"result": result},
            "legacy_event_type": record.get("legacyEventType"),
            "target": json_text_nonempty(targets, sort_keys=False),
            "transaction": {"id": transaction.get("id"), "type": transaction.get("type")},
            "authentication_context": {
                "authentication_provider": auth.get("authenticationProvider"),
                "credential_provider": auth.get("credentialProvider"),
                "credential_type": auth.get("credentialType"),
                "interface": auth.get("interface"),
                "authentication_step": int_cast_or_none(auth.get("authenticationStep")),
                "external_session_id": auth.get("externalSessionId"),
                "issuer": {"id": issuer.get("id"), "type": issuer.get("type")},
            },
            "security_context": {
                "isp": security.get("isp"),
                "domain": security.get("domain"),
                "is_proxy": _bool(security.get("isProxy")),
            },
            "debug_context": {
                "debug_data": {
                    "request_id": debug.get("requestId"),
                    "request_uri": debug.get("requestUri"),
                    "url": debug.get("url"),
                    "dt_hash": debug.get("dtHash"),
                    "threat_suspected": _bool(debug.get("threatSuspected")),
                    "risk_level": _risk_level(debug.get("risk")),
                    "risk": debug.get("risk"),
                    "behaviors": debug.get("behaviors"),
                    "factor": debug.get("factor"),
                    "privilege_granted": debug.get("privilegeGranted"),
                    "flattened": json_text_nonempty(debug, sort_keys=False),
                }
            },
            "request": {"ip_chain": json_text_nonempty(chain, sort_keys=False)},
        },
        "related": {
            "ip": related_ip,
            "user": [u for u in related_users if u and u != "unknown"],
            "hosts": [],
            "hash": [],
        },
    }
