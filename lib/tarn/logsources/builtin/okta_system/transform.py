"""Okta System Log event (LogEvent, as the System Log API returns it) -> ECS.

The actor is who did it (user.*), the first User among the targets whom it was done to
(user.target.*), the first UserGroup the group (user.target.group.*). client.ipAddress is the
source; request.ipChain adds any proxies to related.ip. debugContext.debugData varies by event
type: the useful keys get their own fields and the whole of it is kept as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


def _classify(event_type: str) -> tuple[list[str], list[str]]:
    """eventType -> (event.category, event.type)."""
    return _EVENT_TYPES.get(event_type) or _PREFIXES.get(
        ".".join(event_type.split(".", 2)[:2]), _DEFAULT
    )


def _pick_targets(
    targets: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """The first User target, the first UserGroup target, and every User's alternateId."""
    target_user: dict[str, Any] = {}
    target_group: dict[str, Any] = {}
    users = []
    for target in targets:
        kind = target.get("type")
        if kind == "User":
            users.append(target.get("alternateId"))
            if not target_user:
                target_user = target
        elif kind == "UserGroup" and not target_group:
            target_group = target
    return target_user, target_group, users


def _related_ips(
    source_ip: str | None, chain: Any, ip_of: Callable[[Any], str | None] = strict_ip_or_none
) -> list[str]:
    """The source address, then those of request.ipChain not seen yet."""
    related_ip = [source_ip] if source_ip else []
    for hop in chain:
        ip = ip_of(as_dict(hop).get("ip"))
        if ip and ip not in related_ip:
            related_ip.append(ip)
    return related_ip


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

    target_user, target_group, target_users = _pick_targets(targets)
    related_users = [actor.get("alternateId"), *target_users]

    source_ip = strict_ip_or_none(client.get("ipAddress"))
    chain = record.get("request")
    chain = as_dict(chain).get("ipChain") or []
    related_ip = _related_ips(source_ip, chain)

    category, types = _classify(event_type)
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


# -- the batch version: the same rows for a batch of records, with Arrow compute ----------------
_INT32 = (-(2**31), 2**31 - 1)
_STR_LIST = pa.list_(pa.string())


def _unless(values: pa.Array, text: str) -> pa.Array:
    """`value if value != text else None` per value."""
    return pc.if_else(pc.fill_null(pc.equal(values, text), False), None, values)


@col.columnar(
    raw={
        "eventType": "string",
        "published": "string",
        "displayMessage": "string",
        "severity": "string",
        "uuid": "string",
        "legacyEventType": "string",
        "actor.id": "string",
        "actor.type": "string",
        "actor.alternateId": "string",
        "actor.displayName": "string",
        "client.ipAddress": "string",
        "client.zone": "string",
        "client.device": "string",
        "client.id": "string",
        "client.userAgent.rawUserAgent": "string",
        "client.userAgent.os": "string",
        "client.userAgent.browser": "string",
        "client.geographicalContext.city": "string",
        "client.geographicalContext.state": "string",
        "client.geographicalContext.country": "string",
        "client.geographicalContext.postalCode": "string",
        "outcome.result": "string",
        "outcome.reason": "string",
        "authenticationContext.authenticationProvider": "string",
        "authenticationContext.credentialProvider": "string",
        "authenticationContext.credentialType": "string",
        "authenticationContext.interface": "string",
        "authenticationContext.authenticationStep": "long",
        "authenticationContext.externalSessionId": "string",
        "authenticationContext.issuer.id": "string",
        "authenticationContext.issuer.type": "string",
        "securityContext.asNumber": "long",
        "securityContext.asOrg": "string",
        "securityContext.isp": "string",
        "securityContext.domain": "string",
        "securityContext.isProxy": "json",
        "transaction.id": "string",
        "transaction.type": "string",
        "debugContext.debugData": "json",
        "debugContext.debugData.requestId": "string",
        "debugContext.debugData.requestUri": "string",
        "debugContext.debugData.url": "string",
        "debugContext.debugData.dtHash": "string",
        "debugContext.debugData.risk": "string",
        "debugContext.debugData.behaviors": "string",
        "debugContext.debugData.factor": "string",
        "debugContext.debugData.privilegeGranted": "string",
        "request.ipChain": "json",
        "target": "json",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute; targets,
    the IP chain and debugData (JSON of any shape) are read in Python per record."""
    event_type = batch["eventType"]
    actor_id = batch["actor.alternateId"]
    source_ip = col.per_value(strict_ip_or_none, batch["client.ipAddress"], pa.string())
    step = batch["authenticationContext.authenticationStep"]
    step_fits = pc.and_(pc.greater_equal(step, _INT32[0]), pc.less_equal(step, _INT32[1]))
    # not an Okta LogEvent (transform() raises), or an authenticationStep that is no int32
    odd = pc.or_(pc.invert(col.truthy(event_type)), pc.invert(pc.fill_null(step_fits, True)))

    # target and request.ipChain (JSON of any shape), per record as transform() reads them
    seen: dict[str, str | None] = {}

    def ip_of(value: Any) -> str | None:  # strict_ip_or_none, once per address
        if type(value) is not str:
            return strict_ip_or_none(value)
        found = seen.get(value, "")
        if found == "":
            found = seen[value] = strict_ip_or_none(value)
        return found

    n = len(batch)
    rows = np.zeros(n, dtype=bool)  # records whose shape transform() must read itself
    user_id: list[Any] = [None] * n
    user_name: list[Any] = [None] * n
    user_full: list[Any] = [None] * n
    group_id: list[Any] = [None] * n
    group_name: list[Any] = [None] * n
    target_json: list[str | None] = [None] * n
    chain_json: list[str | None] = [None] * n
    related_users: list[list[str]] = [[]] * n
    related_ip: list[list[str]] = [[]] * n
    per_record = zip(
        actor_id.to_pylist(),
        batch.values("target"),
        source_ip.to_pylist(),
        batch.values("request.ipChain"),
        strict=True,
    )
    for i, (actor, value, ip, chain) in enumerate(per_record):
        if value is None:
            value = []
        if chain is None:
            chain = []
        if type(value) is not list or type(chain) is not list:
            rows[i] = True  # iterated as transform() does, or not iterable: it decides
            continue
        targets = [t for t in value if isinstance(t, dict)]
        user, group, users = _pick_targets(targets)
        picked = (
            user.get("id"),
            user.get("displayName"),
            group.get("id"),
            group.get("displayName"),
        )
        if not all(v is None or type(v) is str for v in (*picked, *users)):
            rows[i] = True  # text fields that are not text: transform() sidelines the row
            continue
        user_id[i], user_full[i], group_id[i], group_name[i] = picked
        user_name[i] = user.get("alternateId")
        target_json[i] = json_text_nonempty(targets, sort_keys=False)
        related_users[i] = [u for u in (actor, *users) if u and u != "unknown"]
        chain_json[i] = json_text_nonempty(chain, sort_keys=False)
        related_ip[i] = _related_ips(ip, chain, ip_of)

    debug = batch.values("debugContext.debugData")
    flattened = [json_text_nonempty(d, sort_keys=False) if type(d) is dict else None for d in debug]
    threat = [_bool(v) for v in batch.values("debugContext.debugData.threatSuspected")]
    is_proxy = [_bool(v) for v in batch.values("securityContext.isProxy")]

    target_name = pa.array(user_name, pa.string())
    dd = "okta.debug_context.debug_data."
    ac = "okta.authentication_context."
    auth = "authenticationContext."
    return {
        col.ROW_PATH: pc.or_(odd, pa.array(rows)),
        "ts": col.timestamps(batch["published"], iso_ts_or_none),
        "message": batch["displayMessage"],
        "log.level": batch["severity"],
        "event.id": batch["uuid"],
        "event.action": event_type,
        "event.kind": col.per_value(
            lambda e: "alert" if e in _ALERTS else "event", event_type, pa.string()
        ),
        "event.category": col.per_value(lambda e: _classify(e)[0], event_type, _STR_LIST),
        "event.type": col.per_value(lambda e: _classify(e)[1], event_type, _STR_LIST),
        "event.outcome": col.lookup(batch["outcome.result"], _OUTCOMES, None, pa.string()),
        "event.reason": batch["outcome.reason"],
        "user.id": batch["actor.id"],
        "user.name": actor_id,
        "user.full_name": batch["actor.displayName"],
        "user.email": col.per_value(_email, actor_id, pa.string()),
        "user.target.id": pa.array(user_id, pa.string()),
        "user.target.name": target_name,
        "user.target.full_name": pa.array(user_full, pa.string()),
        "user.target.email": col.per_value(_email, target_name, pa.string()),
        "user.target.group.id": pa.array(group_id, pa.string()),
        "user.target.group.name": pa.array(group_name, pa.string()),
        "source.ip": source_ip,
        "source.geo.city_name": batch["client.geographicalContext.city"],
        "source.geo.region_name": batch["client.geographicalContext.state"],
        "source.geo.country_name": batch["client.geographicalContext.country"],
        "source.geo.postal_code": batch["client.geographicalContext.postalCode"],
        "source.as.number": batch["securityContext.asNumber"],
        "source.as.organization.name": batch["securityContext.asOrg"],
        "user_agent.original": batch["client.userAgent.rawUserAgent"],
        "user_agent.name": _unless(batch["client.userAgent.browser"], "UNKNOWN"),
        "user_agent.os.name": _unless(batch["client.userAgent.os"], "Unknown"),
        "user_agent.device.name": batch["client.device"],
        "okta.actor.type": batch["actor.type"],
        "okta.client.zone": _unless(batch["client.zone"], "null"),
        "okta.client.id": batch["client.id"],
        "okta.outcome.result": batch["outcome.result"],
        "okta.legacy_event_type": batch["legacyEventType"],
        "okta.target": pa.array(target_json, pa.string()),
        "okta.transaction.id": batch["transaction.id"],
        "okta.transaction.type": batch["transaction.type"],
        ac + "authentication_provider": batch[auth + "authenticationProvider"],
        ac + "credential_provider": batch[auth + "credentialProvider"],
        ac + "credential_type": batch[auth + "credentialType"],
        ac + "interface": batch[auth + "interface"],
        ac + "authentication_step": pc.if_else(pc.fill_null(step_fits, False), step, None),
        ac + "external_session_id": batch[auth + "externalSessionId"],
        ac + "issuer.id": batch[auth + "issuer.id"],
        ac + "issuer.type": batch[auth + "issuer.type"],
        "okta.security_context.isp": batch["securityContext.isp"],
        "okta.security_context.domain": batch["securityContext.domain"],
        "okta.security_context.is_proxy": pa.array(is_proxy, pa.bool_()),
        dd + "request_id": batch["debugContext.debugData.requestId"],
        dd + "request_uri": batch["debugContext.debugData.requestUri"],
        dd + "url": batch["debugContext.debugData.url"],
        dd + "dt_hash": batch["debugContext.debugData.dtHash"],
        dd + "threat_suspected": pa.array(threat, pa.bool_()),
        dd + "risk_level": col.per_value(
            _risk_level, batch["debugContext.debugData.risk"], pa.string()
        ),
        dd + "risk": batch["debugContext.debugData.risk"],
        dd + "behaviors": batch["debugContext.debugData.behaviors"],
        dd + "factor": batch["debugContext.debugData.factor"],
        dd + "privilege_granted": batch["debugContext.debugData.privilegeGranted"],
        dd + "flattened": pa.array(flattened, pa.string()),
        "okta.request.ip_chain": pa.array(chain_json, pa.string()),
        "related.ip": pa.array(related_ip, _STR_LIST),
        "related.user": pa.array(related_users, _STR_LIST),
    }
