"""GitHub audit log event (enterprise or organization audit log streaming) -> ECS.

Streamed events are flat JSON objects: `action` ("repo.access", "org.add_member", "git.clone"),
the `actor` who did it and the `user` it was done to, `org`, `repo` (git events say
`repository`), `@timestamp` and `created_at` in milliseconds since the epoch, and keys that
depend on the action (`visibility`, `permission`, `team`, ...). Keys not given a field of
their own are kept together as JSON in github.extra.

`transform_columns` gives the same rows for a batch of records with Arrow compute (see
lib/tarn/logsources/columnar.py); transform() is the definition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
from tarn.logsources.helpers import strict_ip_or_none

_IAM_USER = (["iam"], ["user", "change"])
_IAM_ADMIN = (["iam"], ["user", "change", "admin"])
_GROUP = (["iam"], ["group", "change"])
_CONFIG = (["configuration"], ["change"])

# action -> (event.category, event.type) where operation_type alone says too little.
_ACTIONS: dict[str, tuple[list[str], list[str]]] = {
    "org.add_member": (["iam"], ["user", "creation"]),
    "org.remove_member": (["iam"], ["user", "deletion"]),
    "org.invite_member": (["iam"], ["user", "creation"]),
    "org.update_member": _IAM_USER,
    "org.add_billing_manager": _IAM_ADMIN,
    "org.add_outside_collaborator": (["iam"], ["user", "creation"]),
    "org.disable_two_factor_requirement": (["configuration", "iam"], ["change"]),
    "org.enable_two_factor_requirement": (["configuration", "iam"], ["change"]),
    "business.add_admin": _IAM_ADMIN,
    "business.remove_admin": _IAM_ADMIN,
    "team.add_member": _GROUP,
    "team.remove_member": _GROUP,
    "team.add_repository": _CONFIG,
    "repo.add_member": _IAM_USER,
    "repo.remove_member": _IAM_USER,
    "repo.access": _CONFIG,
    "repo.create": (["configuration"], ["creation"]),
    "repo.destroy": (["configuration"], ["deletion"]),
    "repo.transfer": _CONFIG,
    "protected_branch.create": (["configuration"], ["creation"]),
    "protected_branch.destroy": (["configuration"], ["deletion"]),
    "protected_branch.policy_override": (["configuration"], ["change", "allowed"]),
    "secret_scanning_push_protection.bypass": (["configuration"], ["change", "allowed"]),
    "personal_access_token.access_granted": (["iam"], ["user", "change"]),
    "personal_access_token.request_created": (["iam"], ["user", "info"]),
    "oauth_authorization.create": (["iam"], ["creation"]),
    "user.login": (["authentication"], ["start"]),
    "user.failed_login": (["authentication"], ["start"]),
}
_PREFIXES: dict[str, list[str]] = {
    "git": ["file"],
    "org": ["configuration"],
    "business": ["configuration"],
    "team": ["iam"],
    "repo": ["configuration"],
    "hook": ["configuration"],
    "integration_installation": ["configuration"],
    "oauth_application": ["configuration"],
    "personal_access_token": ["iam"],
    "protected_branch": ["configuration"],
    "workflows": ["process"],
    "pull_request": ["configuration"],
}
_OPERATIONS = {
    "create": ["creation"],
    "modify": ["change"],
    "remove": ["deletion"],
    "access": ["access"],
    "authentication": ["info"],
    "transfer": ["change"],
}

# Keys given fields of their own (or ignored); everything else goes to github.extra.
_KNOWN = frozenset(
    (
        "@timestamp",
        "_document_id",
        "action",
        "actor",
        "actor_id",
        "actor_ip",
        "actor_is_bot",
        "actor_location",
        "business",
        "business_id",
        "created_at",
        "external_identity_nameid",
        "external_identity_username",
        "hashed_token",
        "operation_type",
        "org",
        "org_id",
        "programmatic_access_type",
        "public_repo",
        "repo",
        "repo_id",
        "repository",
        "repository_id",
        "repository_public",
        "request_id",
        "token_id",
        "token_scopes",
        "transport_protocol",
        "transport_protocol_name",
        "user",
        "user_agent",
        "user_id",
        "visibility",
        "permission",
        "old_permission",
        "team",
    )
)


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str) and value:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return None


def _category(action: str) -> list[str]:
    found = _ACTIONS.get(action)
    return found[0] if found else _PREFIXES.get(action.split(".", 1)[0], ["configuration"])


def _action_types(action: str) -> list[str] | None:
    """event.type where the action alone says it (else operation_type does)."""
    found = _ACTIONS.get(action)
    return found[1] if found else None


def _operation_types(operation: Any) -> list[str]:
    return _OPERATIONS.get(operation or "", ["info"])


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _scopes(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v]
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return []


def _extra(items: Iterable[tuple[str, Any]]) -> str | None:
    """github.extra: the keys given no field of their own, as compact JSON (None if none)."""
    extra = {k: v for k, v in items if k not in _KNOWN}
    return json.dumps(extra, separators=(",", ":")) if extra else None


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a GitHub audit log event is a JSON object, got {type(record).__name__}")
    action = record.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError("not a GitHub audit log event: action is missing")
    ts = _time(record.get("@timestamp")) or _time(record.get("created_at"))
    if ts is None:
        raise ValueError("not a GitHub audit log event: no usable @timestamp or created_at")

    category = _category(action)
    types = _action_types(action)
    if types is None:
        types = _operation_types(record.get("operation_type"))

    actor = _str(record.get("actor"))
    target = _str(record.get("user"))
    ip = strict_ip_or_none(record.get("actor_ip"))
    location = record.get("actor_location")
    country = location.get("country_code") if isinstance(location, dict) else None
    repo = record.get("repo") or record.get("repository")
    repo_id = record.get("repo_id") or record.get("repository_id")
    public = record.get("repository_public")
    if public is None:
        public = record.get("public_repo")
    identity = _str(record.get("external_identity_username"))

    return {
        "ts": ts,
        "event": {
            "id": record.get("_document_id"),
            "action": action,
            "kind": "event",
            "category": category,
            "type": types,
        },
        "user": {
            "name": actor,
            "id": _str(record.get("actor_id")),
            "target": {"name": target, "id": _str(record.get("user_id"))},
        },
        "source": {"ip": ip, "geo": {"country_iso_code": country}},
        "organization": {"name": record.get("org"), "id": _str(record.get("org_id"))},
        "user_agent": {"original": record.get("user_agent")},
        "http": {"request": {"id": record.get("request_id")}},
        "github": {
            "repo": repo,
            "repo_id": _str(repo_id),
            "repository_public": _bool(public),
            "visibility": record.get("visibility"),
            "permission": record.get("permission"),
            "old_permission": record.get("old_permission"),
            "team": record.get("team"),
            "business": record.get("business"),
            "business_id": _str(record.get("business_id")),
            "operation_type": record.get("operation_type"),
            "actor_is_bot": _bool(record.get("actor_is_bot")),
            "hashed_token": record.get("hashed_token"),
            "token_id": _str(record.get("token_id")),
            "token_scopes": _scopes(record.get("token_scopes")),
            "programmatic_access_type": record.get("programmatic_access_type"),
            "transport_protocol_name": record.get("transport_protocol_name"),
            "external_identity_nameid": record.get("external_identity_nameid"),
            "external_identity_username": identity,
            "extra": _extra(record.items()),
        },
        "related": {
            "ip": [ip] if ip else [],
            "user": [u for u in (actor, target, identity) if u],
            "hosts": [],
            "hash": [],
        },
    }


# -- the same rows for a batch of records ------------------------------------------------------
_TEXTS = pa.list_(pa.string())
_NO_TEXT = pa.scalar(None, pa.string())
_NO_TIME = pa.scalar(None, pa.int64())
_MS_FROM = 100_000_000_000  # _time: above this an epoch number is milliseconds
# Up to here (2106) value / 1000 is within 0.24 µs of the exact time: datetime.fromtimestamp
# rounds it to the millisecond given. Numbers outside go through transform().
_MS_TO = 2**32 * 1000


def _epoch(values: pa.Array) -> pa.Array:
    """_time of integers (epoch seconds or milliseconds); null where it is not done exactly
    here (those records go through transform())."""
    ms = pc.and_(pc.greater(values, _MS_FROM), pc.less(values, _MS_TO))
    seconds = pc.and_(pc.greater_equal(values, 0), pc.less_equal(values, _MS_FROM))
    us = pc.if_else(
        ms,
        pc.multiply(values, 1000),
        pc.if_else(seconds, pc.multiply(values, 1_000_000), _NO_TIME),
    )
    return us.cast(pa.timestamp("us", tz="UTC"))


def _text(values: pa.Array) -> pa.Array:
    """_str per value: "" is null, numbers as text."""
    if not pa.types.is_string(values.type):
        return values.cast(pa.string())
    return pc.if_else(pc.equal(values, ""), _NO_TEXT, values)


@col.columnar(
    raw={
        "@timestamp": "long",
        "created_at": "long",
        "_document_id": "string",
        "action": "string",
        "operation_type": "string",
        "actor": "string",
        "actor_id": "long",
        "actor_ip": "string",
        "actor_is_bot": "boolean",
        "actor_location.country_code": "string",
        "user": "string",
        "user_id": "long",
        "org": "string",
        "org_id": "long",
        "business": "string",
        "business_id": "long",
        "user_agent": "string",
        "request_id": "string",
        "repo": "string",
        "repository": "string",
        "repo_id": "long",
        "repository_id": "long",
        "repository_public": "boolean",
        "public_repo": "boolean",
        "visibility": "string",
        "permission": "string",
        "old_permission": "string",
        "team": "string",
        "hashed_token": "string",
        "token_id": "long",
        "token_scopes": "string",
        "programmatic_access_type": "string",
        "transport_protocol_name": "string",
        "external_identity_nameid": "string",
        "external_identity_username": "string",
        "*": "json",  # the other keys: github.extra
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute."""
    action = batch["action"]
    stamp = batch["@timestamp"]
    ts = pc.if_else(pc.is_valid(stamp), _epoch(stamp), _epoch(batch["created_at"]))
    known_types = col.per_value(_action_types, action, _TEXTS)
    operation_types = col.per_value(
        _operation_types, pc.fill_null(batch["operation_type"], ""), _TEXTS
    )
    actor = _text(batch["actor"])
    target = _text(batch["user"])
    identity = _text(batch["external_identity_username"])
    extras: list[str | None] = []
    failed: list[bool] = []
    for rest in batch.values("*"):
        try:
            extras.append(_extra(rest.items()))
            failed.append(False)
        except (ValueError, TypeError, OverflowError):  # transform() says why
            extras.append(None)
            failed.append(True)
    g = "github."
    return {
        # no action: transform() raises (not a GitHub audit log event)
        col.ROW_PATH: pc.or_(pc.invert(col.truthy(action)), pa.array(failed, pa.bool_())),
        "ts": ts,
        "event.id": batch["_document_id"],
        "event.action": action,
        "event.kind": "event",
        "event.category": col.per_value(_category, action, _TEXTS),
        "event.type": pc.if_else(pc.is_valid(known_types), known_types, operation_types),
        "user.name": actor,
        "user.id": _text(batch["actor_id"]),
        "user.target.name": target,
        "user.target.id": _text(batch["user_id"]),
        "source.ip": col.per_value(strict_ip_or_none, batch["actor_ip"], pa.string()),
        "source.geo.country_iso_code": batch["actor_location.country_code"],
        "organization.name": batch["org"],
        "organization.id": _text(batch["org_id"]),
        "user_agent.original": batch["user_agent"],
        "http.request.id": batch["request_id"],
        g + "repo": col.either(batch["repo"], batch["repository"]),
        g + "repo_id": _text(col.either(batch["repo_id"], batch["repository_id"])),
        g + "repository_public": pc.coalesce(batch["repository_public"], batch["public_repo"]),
        g + "visibility": batch["visibility"],
        g + "permission": batch["permission"],
        g + "old_permission": batch["old_permission"],
        g + "team": batch["team"],
        g + "business": batch["business"],
        g + "business_id": _text(batch["business_id"]),
        g + "operation_type": batch["operation_type"],
        g + "actor_is_bot": batch["actor_is_bot"],
        g + "hashed_token": batch["hashed_token"],
        g + "token_id": _text(batch["token_id"]),
        g + "token_scopes": col.per_value(_scopes, pc.fill_null(batch["token_scopes"], ""), _TEXTS),
        g + "programmatic_access_type": batch["programmatic_access_type"],
        g + "transport_protocol_name": batch["transport_protocol_name"],
        g + "external_identity_nameid": batch["external_identity_nameid"],
        g + "external_identity_username": identity,
        g + "extra": pa.array(extras, pa.string()),
        # related.ip is source.ip's; related.user also has identity, after user.name and target
        "related.user": col.unique_values(actor, target, identity),
    }
