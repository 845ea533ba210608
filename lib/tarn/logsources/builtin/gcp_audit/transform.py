"""Google Cloud Audit Logs LogEntry -> ECS.

Records are LogEntry objects whose protoPayload is a google.cloud.audit.AuditLog, as a Cloud
Logging sink writes them (one per line): Admin Activity, Data Access, System Event and Policy
Denied logs alike. The kind of audit log is the end of logName (gcp.audit.log_type).

The principal is user.name and user.email; when it acted through service account
impersonation, the chain of delegates is in gcp.audit.delegation and in related.user.
user.target is the service account acted on (service_account resources: a key created, a
token minted), else the first member a policy change names; the members of all binding
deltas are added to related.user too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from tarn.logsources.helpers import (
    as_dict,
    int_cast_or_none,
    iso_ts_or_none,
    json_text_nonempty,
    strict_ip_or_none,
)

_AUDIT_LOG = "type.googleapis.com/google.cloud.audit.AuditLog"

# The last word of a method name, lowercased, by how it starts -> ECS event.type.
_VERBS = (
    ("create", "creation"),
    ("insert", "creation"),
    ("add", "creation"),
    ("generate", "creation"),
    ("upload", "creation"),
    ("delete", "deletion"),
    ("remove", "deletion"),
    ("destroy", "deletion"),
    ("disable", "change"),
    ("enable", "change"),
    ("set", "change"),
    ("update", "change"),
    ("patch", "change"),
    ("undelete", "change"),
    ("move", "change"),
    ("get", "access"),
    ("list", "access"),
    ("search", "access"),
    ("read", "access"),
    ("lookup", "access"),
    ("query", "access"),
    ("signblob", "access"),
    ("signjwt", "access"),
)
_CATEGORIES = {
    "iam.googleapis.com": ["iam", "configuration"],
    "iamcredentials.googleapis.com": ["iam", "authentication"],
    "cloudresourcemanager.googleapis.com": ["iam", "configuration"],
    "admin.googleapis.com": ["iam", "configuration"],
    "login.googleapis.com": ["authentication"],
    "sts.googleapis.com": ["authentication"],
    "compute.googleapis.com": ["configuration", "host"],
    "container.googleapis.com": ["configuration"],
    "k8s.io": ["configuration"],
    "storage.googleapis.com": ["file"],
    "bigquery.googleapis.com": ["database"],
    "cloudsql.googleapis.com": ["database"],
    "logging.googleapis.com": ["configuration"],
    "cloudkms.googleapis.com": ["configuration"],
    "secretmanager.googleapis.com": ["configuration"],
}
_LOG_TYPES = {
    "activity": "admin_activity",
    "data_access": "data_access",
    "system_event": "system_event",
    "policy": "policy_denied",
    "access_transparency": "access_transparency",
}
_VERB_CACHE: dict[str, str] = {}


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _event_type(method: str) -> str:
    found = _VERB_CACHE.get(method)
    if found is None:
        word = method.rsplit(".", 1)[-1].lower()
        found = next((t for verb, t in _VERBS if word.startswith(verb)), "info")
        if len(_VERB_CACHE) < 10_000:
            _VERB_CACHE[method] = found
    return found


_MEMBER_KINDS = frozenset(("user", "serviceAccount", "group"))


def _member(value: Any) -> str | None:
    """'user:alice@example.com' -> 'alice@example.com'; None for allUsers, domain:... and such."""
    if not isinstance(value, str):
        return None
    kind, _, rest = value.partition(":")
    if kind == "deleted":  # deleted:user:someone@example.com?uid=123
        kind, _, rest = rest.partition(":")
        rest = rest.partition("?")[0]
    return (rest or None) if kind in _MEMBER_KINDS else None


def _binding_deltas(payload: dict[str, Any]) -> list[dict[str, Any]]:
    for holder in (payload.get("serviceData"), payload.get("metadata")):
        delta = as_dict(as_dict(holder).get("policyDelta"))
        deltas = delta.get("bindingDeltas")
        if isinstance(deltas, list):
            return [d for d in deltas if isinstance(d, dict)]
    return []


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a Cloud Audit Logs entry is a JSON object, got {type(record).__name__}")
    payload = record.get("protoPayload")
    if not isinstance(payload, dict) or payload.get("@type") != _AUDIT_LOG:
        raise ValueError("not a Cloud Audit Logs entry: protoPayload is not an AuditLog")
    ts = iso_ts_or_none(record.get("timestamp")) or iso_ts_or_none(record.get("receiveTimestamp"))
    if ts is None:
        raise ValueError("Cloud Audit Logs entry without a usable timestamp")

    method = payload.get("methodName") or ""
    service = payload.get("serviceName")
    auth = as_dict(payload.get("authenticationInfo"))
    meta = as_dict(payload.get("requestMetadata"))
    status = as_dict(payload.get("status"))
    resource = as_dict(record.get("resource"))
    labels = as_dict(resource.get("labels"))
    log_name = record.get("logName") or ""
    operation = as_dict(record.get("operation"))

    principal = auth.get("principalEmail") or None
    delegation = []
    for hop in auth.get("serviceAccountDelegationInfo") or []:
        hop = as_dict(hop)
        first = as_dict(hop.get("firstPartyPrincipal")).get("principalEmail")
        third = as_dict(hop.get("thirdPartyPrincipal")).get("thirdPartyClaims")
        if first:
            delegation.append(first)
        elif third:
            delegation.append(json.dumps(third, separators=(",", ":"), sort_keys=True))
    deltas = _binding_deltas(payload)
    members = [_member(d.get("member")) for d in deltas]

    authz = [as_dict(a) for a in payload.get("authorizationInfo") or []]
    permissions = [a["permission"] for a in authz if a.get("permission")]
    code = status.get("code")
    failed = isinstance(code, int) and code != 0
    denied = failed and code == 7  # PERMISSION_DENIED
    if not failed and any(a.get("granted") is False for a in authz):
        denied = failed = True

    raw_ip = meta.get("callerIp")
    source_ip = strict_ip_or_none(raw_ip)
    project = labels.get("project_id")
    if not project and log_name.startswith("projects/"):
        project = log_name.split("/", 2)[1]
    log_kind = unquote(log_name.rpartition("/")[2]).rpartition("/")[2]
    location = labels.get("location") or labels.get("region")
    zone = labels.get("zone")
    if not location and zone:
        location = zone.rsplit("-", 1)[0]

    # Whom it was done to: the service account of a service_account resource (a key made,
    # a token minted), else the first member a policy change names.
    target = labels.get("email_id") if resource.get("type") == "service_account" else None
    if not target:
        target = next((m for m in members if m), None)

    types = [_event_type(method)] if method else ["info"]
    if denied:
        types.append("denied")
    related_users = [u for u in (principal, target, *delegation, *members) if u and "{" not in u]

    return {
        "ts": ts,
        "log": {"level": record.get("severity")},
        "event": {
            "id": record.get("insertId"),
            "action": method or None,
            "provider": service,
            "kind": "event",
            "category": _CATEGORIES.get(service or "", ["configuration"]),
            "type": types,
            "outcome": "failure" if failed else "success",
        },
        "error": {
            "code": str(code) if failed else None,
            "message": status.get("message") if failed else None,
        },
        "user": {
            "name": principal,
            "email": principal if principal and "@" in principal else None,
            "target": {"name": target, "email": target if target and "@" in target else None},
        },
        "source": {"ip": source_ip, "address": raw_ip},
        "user_agent": {"original": meta.get("callerSuppliedUserAgent")},
        "cloud": {
            "provider": "gcp",
            "project": {"id": project},
            "region": location,
            "availability_zone": zone,
            "instance": {"id": labels.get("instance_id")},
        },
        "gcp": {
            "audit": {
                "log_type": _LOG_TYPES.get(log_kind, log_kind or None),
                "log_name": log_name or None,
                "resource_name": payload.get("resourceName"),
                "resource_type": resource.get("type"),
                "resource_labels": json_text_nonempty(labels, sort_keys=False),
                "principal_subject": auth.get("principalSubject"),
                "service_account_key_name": auth.get("serviceAccountKeyName"),
                "delegation": delegation,
                "caller_network": meta.get("callerNetwork"),
                "permissions": permissions,
                "authorization_info": json_text_nonempty(authz, sort_keys=False),
                "binding_deltas": json_text_nonempty(deltas, sort_keys=False),
                "num_response_items": int_cast_or_none(payload.get("numResponseItems")),
                "request": json_text_nonempty(payload.get("request"), sort_keys=False),
                "response": json_text_nonempty(payload.get("response"), sort_keys=False),
                "metadata": json_text_nonempty(payload.get("metadata"), sort_keys=False),
                "operation": {
                    "id": operation.get("id"),
                    "producer": operation.get("producer"),
                    "first": _bool(operation.get("first")),
                    "last": _bool(operation.get("last")),
                },
                "receive_timestamp": iso_ts_or_none(record.get("receiveTimestamp")),
            }
        },
        "related": {
            "ip": [source_ip] if source_ip else [],
            "user": related_users,
            "hosts": [],
            "hash": [],
        },
    }
