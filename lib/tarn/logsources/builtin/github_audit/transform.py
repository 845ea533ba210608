"""GitHub audit log event (enterprise or organization audit log streaming) -> ECS.

Streamed events are flat JSON objects: `action` ("repo.access", "org.add_member", "git.clone"),
the `actor` who did it and the `user` it was done to, `org`, `repo` (git events say
`repository`), `@timestamp` and `created_at` in milliseconds since the epoch, and keys that
depend on the action (`visibility`, `permission`, `team`, ...). Keys not given a field of
their own are kept together as JSON in github.extra.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

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


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a GitHub audit log event is a JSON object, got {type(record).__name__}")
    action = record.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError("not a GitHub audit log event: action is missing")
    ts = _time(record.get("@timestamp")) or _time(record.get("created_at"))
    if ts is None:
        raise ValueError("not a GitHub audit log event: no usable @timestamp or created_at")

    found = _ACTIONS.get(action)
    if found is None:
        category = _PREFIXES.get(action.split(".", 1)[0], ["configuration"])
        types = _OPERATIONS.get(record.get("operation_type") or "", ["info"])
    else:
        category, types = found

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
    extra = {k: v for k, v in record.items() if k not in _KNOWN}
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
            "extra": json.dumps(extra, separators=(",", ":")) if extra else None,
        },
        "related": {
            "ip": [ip] if ip else [],
            "user": [u for u in (actor, target, identity) if u],
            "hosts": [],
            "hash": [],
        },
    }
