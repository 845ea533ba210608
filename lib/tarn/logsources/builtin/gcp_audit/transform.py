"""Google Cloud Audit Logs LogEntry -> ECS.

Records are LogEntry objects whose protoPayload is a google.cloud.audit.AuditLog, as a Cloud
Logging sink writes them (one per line): Admin Activity, Data Access, System Event and Policy
Denied logs alike. The kind of audit log is the end of logName (gcp.audit.log_type).
`transform` makes the row of one entry; `transform_columns` makes the same rows for a batch
of entries with Arrow compute (the transformer uses it, transform() decides the rest).

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

import msgspec
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


def _binding_deltas(*holders: Any) -> list[dict[str, Any]]:
    """The bindingDeltas of the first holder (serviceData, metadata) whose policyDelta has a
    list of them."""
    for holder in holders:
        delta = as_dict(as_dict(holder).get("policyDelta"))
        deltas = delta.get("bindingDeltas")
        if isinstance(deltas, list):
            return [d for d in deltas if isinstance(d, dict)]
    return []


def _delegation(hops: Any) -> list[Any]:
    """The principals of serviceAccountDelegationInfo, in order (third parties as JSON)."""
    delegation = []
    for hop in hops or []:
        hop = as_dict(hop)
        first = as_dict(hop.get("firstPartyPrincipal")).get("principalEmail")
        third = as_dict(hop.get("thirdPartyPrincipal")).get("thirdPartyClaims")
        if first:
            delegation.append(first)
        elif third:
            delegation.append(json.dumps(third, separators=(",", ":"), sort_keys=True))
    return delegation


def _authorizations(value: Any) -> list[dict[str, Any]]:
    return [as_dict(a) for a in value or []]


def _permissions(authz: list[dict[str, Any]]) -> list[Any]:
    return [a["permission"] for a in authz if a.get("permission")]


def _refused(authz: list[dict[str, Any]]) -> bool:
    """Some authorization was not granted."""
    return any(a.get("granted") is False for a in authz)


def _log_project(log_name: str) -> str | None:
    """The project of a logName 'projects/<id>/logs/...', None for other names."""
    return log_name.split("/", 2)[1] if log_name.startswith("projects/") else None


def _log_type(log_name: str) -> str | None:
    log_kind = unquote(log_name.rpartition("/")[2]).rpartition("/")[2]
    return _LOG_TYPES.get(log_kind, log_kind or None)


def _zone_region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def _event_types(method: str, denied: bool) -> list[str]:
    types = [_event_type(method)] if method else ["info"]
    if denied:
        types.append("denied")
    return types


def _related_user(value: Any) -> bool:
    """A value for related.user: not empty, and no JSON (third-party claims)."""
    return bool(value) and "{" not in value


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
    delegation = _delegation(auth.get("serviceAccountDelegationInfo"))
    deltas = _binding_deltas(payload.get("serviceData"), payload.get("metadata"))
    members = [_member(d.get("member")) for d in deltas]

    authz = _authorizations(payload.get("authorizationInfo"))
    permissions = _permissions(authz)
    code = status.get("code")
    failed = isinstance(code, int) and code != 0
    denied = failed and code == 7  # PERMISSION_DENIED
    if not failed and _refused(authz):
        denied = failed = True

    raw_ip = meta.get("callerIp")
    source_ip = strict_ip_or_none(raw_ip)
    project = labels.get("project_id")
    from_log = _log_project(log_name)
    if not project and from_log is not None:
        project = from_log
    location = labels.get("location") or labels.get("region")
    zone = labels.get("zone")
    if not location and zone:
        location = _zone_region(zone)

    # Whom it was done to: the service account of a service_account resource (a key made,
    # a token minted), else the first member a policy change names.
    target = labels.get("email_id") if resource.get("type") == "service_account" else None
    if not target:
        target = next((m for m in members if m), None)

    related_users = [u for u in (principal, target, *delegation, *members) if _related_user(u)]

    return {
        "ts": ts,
        "log": {"level": record.get("severity")},
        "event": {
            "id": record.get("insertId"),
            "action": method or None,
            "provider": service,
            "kind": "event",
            "category": _CATEGORIES.get(service or "", ["configuration"]),
            "type": _event_types(method, denied),
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
                "log_type": _log_type(log_name),
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


# -- the same rows for a batch of entries ----------------------------------------------------------
_TEXTS = pa.list_(pa.string())
_INT64 = (-(2**63), 2**63)


# json_text_nonempty(value, sort_keys=False) is this encoder's text, None for None, {} and [];
# where the encoder fails it is the standard library's (rare: then json_text_nonempty itself).
_IN_ORDER = msgspec.json.Encoder()
_EMPTY_JSON = pa.array(["{}", "[]"])


def _json_texts(values: list[Any], bad: np.ndarray) -> pa.Array:
    """json_text_nonempty(value, sort_keys=False) per value."""
    encode = _IN_ORDER.encode
    texts: list[bytes | str | None]
    try:
        texts = [None if v is None else encode(v) for v in values]
    except Exception:  # json_text_nonempty per value says what it makes of them
        texts = []
        for i, value in enumerate(values):
            try:
                texts.append(json_text_nonempty(value, sort_keys=False))
            except Exception:  # transform() raises on it too
                bad[i] = True
                texts.append(None)
    found = pa.array(texts, pa.string())
    return pc.if_else(pc.is_in(found, _EMPTY_JSON), None, found)


def _authorization_info(
    values: list[Any], bad: np.ndarray
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Per entry what transform() takes from authorizationInfo: the JSON text of the
    authorizations, their permissions, and whether one was refused."""
    n = len(values)
    empty: list[str] = []
    permissions: list[list[str]] = [empty] * n
    refused = np.zeros(n, dtype=bool)
    odd: dict[int, str | None] = {}  # not a list of objects: the text of what transform() reads
    for i, value in enumerate(values):
        if value is None:
            continue
        if type(value) is list:  # the usual shape, read here as _permissions and _refused do
            found: list[str] = []
            no = False
            for a in value:
                if type(a) is not dict:
                    break
                permission = a.get("permission")
                if permission:
                    if type(permission) is not str:
                        break
                    found.append(permission)
                if a.get("granted") is False:
                    no = True
            else:
                permissions[i] = found
                refused[i] = no
                continue
        try:
            authz = _authorizations(value)
            found = _permissions(authz)
            if any(type(x) is not str for x in found):
                raise TypeError("a permission that is not text: the table cannot hold it")
            odd[i] = json_text_nonempty(authz, sort_keys=False)
        except Exception:
            bad[i] = True
            continue
        permissions[i] = found
        refused[i] = _refused(authz)
    # where every authorization is an object, _authorizations(value) is the value itself
    texts = _json_texts([None if i in odd else v for i, v in enumerate(values)], bad)
    if odd:
        at = pa.array(list(odd), pa.int64())
        texts = pc.replace_with_mask(
            texts,
            pc.is_in(pa.array(np.arange(n)), at),
            pa.array([odd[i] for i in sorted(odd)], pa.string()),
        )
    return texts, pa.array(permissions, _TEXTS), refused


def _python_columns(batch: col.Batch, bad: np.ndarray) -> dict[str, Any]:
    """What transform() works out of lists and whole JSON values, per entry with its own
    helpers (only where the value is there). An entry where they raise or give what the
    table cannot hold is marked in `bad` (transform() sidelines it)."""
    n = len(batch)
    p = "protoPayload."
    empty: list[str] = []

    authz_texts, permissions, refused = _authorization_info(
        batch.values(p + "authorizationInfo"), bad
    )

    delegation: list[list[str]] = [empty] * n
    extra_users: dict[int, list[str]] = {}  # related.user after the principal and target
    for i, value in enumerate(batch.values(p + "authenticationInfo.serviceAccountDelegationInfo")):
        if value is None:
            continue
        try:
            found = _delegation(value)
            if any(type(x) is not str for x in found):
                raise TypeError("a delegate that is not text")
        except Exception:
            bad[i] = True
            continue
        delegation[i] = found
        extra_users[i] = [u for u in found if _related_user(u)]

    delta_texts: list[str | None] = [None] * n
    first_member: list[str | None] = [None] * n
    service_data = batch.values(p + "serviceData")
    metadata = batch.values(p + "metadata")
    for i, (data, meta) in enumerate(zip(service_data, metadata, strict=True)):
        if data is None and meta is None:
            continue
        try:
            deltas = _binding_deltas(data, meta)
            if not deltas:
                continue
            members = [_member(d.get("member")) for d in deltas]
            delta_texts[i] = json_text_nonempty(deltas, sort_keys=False)
        except Exception:
            bad[i] = True
            continue
        first_member[i] = next((m for m in members if m), None)
        extra_users.setdefault(i, []).extend(m for m in members if m and _related_user(m))

    items: list[int | None] = [None] * n
    for i, value in enumerate(batch.values(p + "numResponseItems")):
        if value is None:
            continue
        try:
            number = int_cast_or_none(value)
        except Exception:
            bad[i] = True
            continue
        if number is not None and not _INT64[0] <= number < _INT64[1]:
            bad[i] = True  # does not fit the table: transform()'s row is sidelined
            continue
        items[i] = number

    labels = [v if type(v) is dict else None for v in batch.values("resource.labels")]
    return {
        "permissions": permissions,
        "authorization_info": authz_texts,
        "refused": pa.array(refused),
        "delegation": pa.array(delegation, _TEXTS),
        "extra_users": extra_users,
        "binding_deltas": pa.array(delta_texts, pa.string()),
        "first_member": pa.array(first_member, pa.string()),
        "num_response_items": pa.array(items, pa.int64()),
        "resource_labels": _json_texts(labels, bad),
        "request": _json_texts(batch.values(p + "request"), bad),
        "response": _json_texts(batch.values(p + "response"), bad),
        "metadata": _json_texts(metadata, bad),
    }


def _user_lists(first: pa.Array, second: pa.Array, extra: dict[int, list[str]]) -> pa.Array:
    """Per entry [first, second, *extra[i]] as a list array."""
    n = len(first)
    counts = np.full(n, 2, dtype=np.int64)
    for i, users in extra.items():
        counts[i] += len(users)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = np.arange(n, dtype=np.int64)
    index = np.empty(int(offsets[-1]), dtype=np.int64)
    index[offsets[:-1]] = rows
    index[offsets[:-1] + 1] = rows + n
    flat: list[str] = []
    for i, users in extra.items():
        start = int(offsets[i]) + 2
        index[start : start + len(users)] = np.arange(len(users)) + 2 * n + len(flat)
        flat.extend(users)
    values = pa.concat_arrays([first, second, pa.array(flat, pa.string())])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values.take(index))


def _when(condition: pa.Array, values: pa.Array) -> pa.Array:
    """`values if condition else None` per entry."""
    return pc.if_else(pc.fill_null(condition, False), values, None)


def _has(values: pa.Array, text: str) -> pa.Array:
    return pc.fill_null(pc.match_substring(values, text), False)


@col.columnar(
    raw={
        "timestamp": "string",
        "receiveTimestamp": "string",
        "severity": "string",
        "insertId": "string",
        "logName": "string",
        "protoPayload.@type": "string",
        "protoPayload.methodName": "string",
        "protoPayload.serviceName": "string",
        "protoPayload.resourceName": "string",
        "protoPayload.authenticationInfo.principalEmail": "string",
        "protoPayload.authenticationInfo.principalSubject": "string",
        "protoPayload.authenticationInfo.serviceAccountKeyName": "string",
        "protoPayload.authenticationInfo.serviceAccountDelegationInfo": "json",
        "protoPayload.requestMetadata.callerIp": "string",
        "protoPayload.requestMetadata.callerSuppliedUserAgent": "string",
        "protoPayload.requestMetadata.callerNetwork": "string",
        "protoPayload.status.code": "long",
        "protoPayload.status.message": "string",
        "protoPayload.authorizationInfo": "json",
        "protoPayload.serviceData": "json",
        "protoPayload.metadata": "json",
        "protoPayload.numResponseItems": "json",
        "protoPayload.request": "json",
        "protoPayload.response": "json",
        "resource.type": "string",
        "resource.labels": "json",
        "resource.labels.project_id": "string",
        "resource.labels.location": "string",
        "resource.labels.region": "string",
        "resource.labels.zone": "string",
        "resource.labels.email_id": "string",
        "resource.labels.instance_id": "string",
        "operation.id": "string",
        "operation.producer": "string",
        "operation.first": "boolean",
        "operation.last": "boolean",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of entries: the same rows, built with Arrow compute."""
    n = len(batch)
    p = "protoPayload."
    auth = p + "authenticationInfo."
    meta = p + "requestMetadata."
    labels = "resource.labels."
    bad = np.zeros(n, dtype=bool)
    py = _python_columns(batch, bad)

    # not an AuditLog entry (no protoPayload, another @type): transform() raises
    not_audit = pc.invert(pc.fill_null(pc.equal(batch[p + "@type"], _AUDIT_LOG), False))
    ts, ts_raises = col.timestamps_checked(batch["timestamp"], iso_ts_or_none)
    received, received_raises = col.timestamps_checked(batch["receiveTimestamp"], iso_ts_or_none)

    method = batch[p + "methodName"]
    service = batch[p + "serviceName"]
    code = batch[p + "status.code"]
    code_failed = pc.fill_null(pc.not_equal(code, 0), False)
    refused = pc.and_(pc.invert(code_failed), py["refused"])
    failed = pc.or_(code_failed, refused)
    denied = pc.or_(pc.and_(code_failed, pc.fill_null(pc.equal(code, 7), False)), refused)
    method_text = pc.fill_null(method, "")
    types = pc.if_else(
        denied,
        col.per_value(lambda m: _event_types(m, True), method_text, _TEXTS),
        col.per_value(lambda m: _event_types(m, False), method_text, _TEXTS),
    )

    principal = _when(col.truthy(batch[auth + "principalEmail"]), batch[auth + "principalEmail"])
    is_sa = pc.equal(batch["resource.type"], "service_account")
    target = _when(is_sa, batch[labels + "email_id"])
    target = col.either(target, py["first_member"])  # the first member: None or text

    log_name = batch["logName"]
    project = batch[labels + "project_id"]
    from_log = col.per_value(_log_project, log_name, pa.string())
    project = pc.if_else(
        pc.and_(pc.invert(col.truthy(project)), pc.is_valid(from_log)), from_log, project
    )
    location = col.either(batch[labels + "location"], batch[labels + "region"])
    zone = batch[labels + "zone"]
    location = pc.if_else(
        pc.and_(pc.invert(col.truthy(location)), col.truthy(zone)),
        col.per_value(_zone_region, zone, pa.string()),
        location,
    )

    users = _user_lists(
        _when(pc.invert(_has(principal, "{")), principal),
        _when(pc.invert(_has(target, "{")), target),
        py["extra_users"],
    )
    ga = "gcp.audit."
    return {
        col.ROW_PATH: pc.or_(pc.or_(not_audit, pa.array(bad)), pc.or_(ts_raises, received_raises)),
        "ts": pc.coalesce(ts, received),
        "log.level": batch["severity"],
        "event.id": batch["insertId"],
        "event.action": _when(col.truthy(method), method),
        "event.provider": service,
        "event.kind": "event",
        "event.category": col.lookup(
            pc.fill_null(service, ""), _CATEGORIES, ["configuration"], _TEXTS
        ),
        "event.type": types,
        "event.outcome": pc.if_else(failed, "failure", "success"),
        "error.code": _when(failed, pc.fill_null(code.cast(pa.string()), "None")),
        "error.message": _when(failed, batch[p + "status.message"]),
        "user.name": principal,
        "user.email": _when(_has(principal, "@"), principal),
        "user.target.name": target,
        "user.target.email": _when(_has(target, "@"), target),
        "source.ip": col.per_value(strict_ip_or_none, batch[meta + "callerIp"], pa.string()),
        "source.address": batch[meta + "callerIp"],
        "user_agent.original": batch[meta + "callerSuppliedUserAgent"],
        "cloud.provider": "gcp",
        "cloud.project.id": project,
        "cloud.region": location,
        "cloud.availability_zone": zone,
        "cloud.instance.id": batch[labels + "instance_id"],
        ga + "log_type": col.per_value(_log_type, pc.fill_null(log_name, ""), pa.string()),
        ga + "log_name": _when(col.truthy(log_name), log_name),
        ga + "resource_name": batch[p + "resourceName"],
        ga + "resource_type": batch["resource.type"],
        ga + "resource_labels": py["resource_labels"],
        ga + "principal_subject": batch[auth + "principalSubject"],
        ga + "service_account_key_name": batch[auth + "serviceAccountKeyName"],
        ga + "delegation": py["delegation"],
        ga + "caller_network": batch[meta + "callerNetwork"],
        ga + "permissions": py["permissions"],
        ga + "authorization_info": py["authorization_info"],
        ga + "binding_deltas": py["binding_deltas"],
        ga + "num_response_items": py["num_response_items"],
        ga + "request": py["request"],
        ga + "response": py["response"],
        ga + "metadata": py["metadata"],
        ga + "operation.id": batch["operation.id"],
        ga + "operation.producer": batch["operation.producer"],
        ga + "operation.first": batch["operation.first"],
        ga + "operation.last": batch["operation.last"],
        ga + "receive_timestamp": received,
        "related.user": users,
    }
