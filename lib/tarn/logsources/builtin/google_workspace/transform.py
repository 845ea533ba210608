"""Google Workspace activity (Admin SDK Reports API Activity resource) -> ECS.

One Activity holds one or more events (events[]), each with a type, a name and parameters;
each event becomes its own row. Login events go to the table google_workspace_login,
Admin console events to google_workspace_admin, the other applications (drive, token, saml,
...) to google_workspace with the parameters as JSON.

Parameters come as [{"name": ..., "value" | "multiValue" | "boolValue" | "intValue" |
"multiIntValue" | "messageValue": ...}]; they are flattened to {name: value} and kept whole
in google_workspace.parameters, and the well-known ones get fields of their own.
"""

from __future__ import annotations

import json
from typing import Any

from tarn.logsources.helpers import as_dict, int_cast_or_none, iso_ts_or_none, strict_ip_or_none

_TABLES = {"login": "login", "admin": "admin"}

_AUTH_START = ("event", ["authentication"], ["start"])
_AUTH_INFO = ("event", ["authentication"], ["info"])
_ALERT = ("alert", ["authentication", "intrusion_detection"], ["info"])
_USER_CHANGE = ("event", ["iam"], ["user", "change"])
_ADMIN_CHANGE = ("event", ["iam"], ["user", "change", "admin"])
_GROUP_CHANGE = ("event", ["iam"], ["group", "change"])
_CONFIG = ("event", ["configuration"], ["change"])

# event name -> (event.kind, event.category, event.type)
_EVENTS: dict[str, tuple[str, list[str], list[str]]] = {
    # login
    "login_success": _AUTH_START,
    "login_failure": _AUTH_START,
    "logout": ("event", ["authentication"], ["end"]),
    "login_challenge": _AUTH_INFO,
    "login_verification": _AUTH_INFO,
    "suspicious_login": _ALERT,
    "suspicious_login_less_secure_app": _ALERT,
    "suspicious_programmatic_login": _ALERT,
    "gov_attack_warning": _ALERT,
    "account_disabled_password_leak": ("alert", ["iam", "intrusion_detection"], ["user", "change"]),
    "account_disabled_hijacked": ("alert", ["iam", "intrusion_detection"], ["user", "change"]),
    "account_disabled_spamming": ("alert", ["iam"], ["user", "change"]),
    "password_edit": _USER_CHANGE,
    "2sv_enroll": _USER_CHANGE,
    "2sv_disable": _USER_CHANGE,
    "recovery_email_edit": _USER_CHANGE,
    "recovery_phone_edit": _USER_CHANGE,
    # admin
    "CREATE_USER": ("event", ["iam"], ["user", "creation"]),
    "DELETE_USER": ("event", ["iam"], ["user", "deletion"]),
    "SUSPEND_USER": _USER_CHANGE,
    "UNSUSPEND_USER": _USER_CHANGE,
    "CHANGE_PASSWORD": _USER_CHANGE,
    "CHANGE_FIRST_NAME": _USER_CHANGE,
    "CHANGE_LAST_NAME": _USER_CHANGE,
    "ENFORCE_STRONG_AUTHENTICATION": _CONFIG,
    "GRANT_ADMIN_PRIVILEGE": _ADMIN_CHANGE,
    "REVOKE_ADMIN_PRIVILEGE": _ADMIN_CHANGE,
    "ASSIGN_ROLE": _ADMIN_CHANGE,
    "UNASSIGN_ROLE": _ADMIN_CHANGE,
    "CREATE_ROLE": ("event", ["iam"], ["creation", "admin"]),
    "ADD_PRIVILEGE": ("event", ["iam"], ["change", "admin"]),
    "CREATE_GROUP": ("event", ["iam"], ["group", "creation"]),
    "DELETE_GROUP": ("event", ["iam"], ["group", "deletion"]),
    "ADD_GROUP_MEMBER": _GROUP_CHANGE,
    "REMOVE_GROUP_MEMBER": _GROUP_CHANGE,
    "AUTHORIZE_API_CLIENT_ACCESS": ("event", ["iam", "configuration"], ["change", "admin"]),
    "REMOVE_API_CLIENT_ACCESS": ("event", ["iam", "configuration"], ["change", "admin"]),
    "CREATE_EMAIL_MONITOR": ("event", ["configuration", "email"], ["creation"]),
    "DELETE_EMAIL_MONITOR": ("event", ["configuration", "email"], ["deletion"]),
    "CHANGE_APPLICATION_SETTING": _CONFIG,
    "CREATE_APPLICATION_SETTING": ("event", ["configuration"], ["creation"]),
    "DELETE_APPLICATION_SETTING": ("event", ["configuration"], ["deletion"]),
}
_DEFAULT = ("event", ["configuration"], ["info"])

_OUTCOMES = {
    "login_success": "success",
    "login_failure": "failure",
    "logout": "success",
}
_CHALLENGE = {"Challenge Passed": "success", "Challenge Failed": "failure", "passed": "success"}


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return None


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _params(items: Any) -> dict[str, Any]:
    """[{"name": n, "value" | "multiValue" | ...: v}] -> {n: v}."""
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            continue
        if "value" in item:
            value = item["value"]
        elif "multiValue" in item:
            value = item["multiValue"]
        elif "boolValue" in item:
            value = item["boolValue"]
        elif "intValue" in item:
            value = int_cast_or_none(item["intValue"])
        elif "multiIntValue" in item:
            value = [int_cast_or_none(v) for v in item["multiIntValue"] or []]
        elif "messageValue" in item:
            value = _params(as_dict(item["messageValue"]).get("parameter"))
        elif "multiMessageValue" in item:
            value = [_params(as_dict(m).get("parameter")) for m in item["multiMessageValue"] or []]
        else:
            value = None
        out[item["name"]] = value
    return out


def _email_domain(email: Any) -> str | None:
    if isinstance(email, str) and "@" in email:
        return email.rpartition("@")[2]
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def transform(record: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(record, dict):
        raise ValueError(
            f"a Google Workspace activity is a JSON object, got {type(record).__name__}"
        )
    ident = record.get("id")
    events = record.get("events")
    if not isinstance(ident, dict) or not isinstance(events, list):
        raise ValueError("not a Reports API activity: id and events[] are required")
    ts = iso_ts_or_none(ident.get("time"))
    if ts is None:
        raise ValueError(f"id.time is not an ISO 8601 time: {ident.get('time')!r}")
    app = ident.get("applicationName")
    table = _TABLES.get(app or "")

    actor = as_dict(record.get("actor"))
    actor_email = actor.get("email")
    network = as_dict(record.get("networkInfo"))
    asns = network.get("ipAsn") or []
    source_ip = strict_ip_or_none(record.get("ipAddress"))

    rows = []
    for event in events:
        if not isinstance(event, dict) or not event.get("name"):
            raise ValueError("an entry of events[] has no name")
        name = event["name"]
        params = _params(event.get("parameters"))
        kind, category, types = _EVENTS.get(name) or _DEFAULT
        outcome = _OUTCOMES.get(name)
        status = params.get("login_challenge_status")
        if outcome is None and isinstance(status, str):
            outcome = _CHALLENGE.get(status)
        if outcome is None and table == "admin":
            outcome = "success"  # the Admin console logs changes that were made
        target = params.get("USER_EMAIL") or params.get("affected_email_address")
        group = params.get("GROUP_EMAIL")

        row: dict[str, Any] = {
            "ts": ts,
            "event": {
                "id": ident.get("uniqueQualifier"),
                "action": name,
                "provider": app,
                "kind": kind,
                "category": category,
                "type": types,
                "outcome": outcome,
            },
            "user": {
                "name": actor_email,
                "email": actor_email,
                "id": actor.get("profileId"),
                "domain": _email_domain(actor_email),
                "target": {
                    "name": target,
                    "email": target if _email_domain(target) else None,
                    "group": {"name": group},
                },
            },
            "source": {
                "ip": source_ip,
                "geo": {
                    "country_iso_code": network.get("regionCode"),
                    "region_iso_code": network.get("subdivisionCode"),
                },
                "as": {
                    "number": int_cast_or_none(asns[0]) if isinstance(asns, list) and asns else None
                },
            },
            "organization": {"id": ident.get("customerId")},
            "google_workspace": {
                "event": {"type": event.get("type")},
                "actor": {"caller_type": actor.get("callerType"), "key": actor.get("key")},
                "parameters": json.dumps(params, separators=(",", ":")) if params else None,
            },
            "related": {
                "ip": [source_ip] if source_ip else [],
                "user": [u for u in (actor_email, target) if u],
                "hosts": [],
                "hash": [],
            },
        }
        if table == "login":
            row["_table"] = "login"
            row["google_workspace"]["login"] = {
                "type": params.get("login_type"),
                "challenge_method": _list(params.get("login_challenge_method")),
                "challenge_status": status,
                "failure_type": params.get("login_failure_type"),
                "is_suspicious": _bool(params.get("is_suspicious")),
                "is_second_factor": _bool(params.get("is_second_factor")),
            }
        elif table == "admin":
            row["_table"] = "admin"
            row["google_workspace"]["admin"] = {
                "application_name": params.get("APPLICATION_NAME"),
                "setting_name": params.get("SETTING_NAME"),
                "old_value": _text(params.get("OLD_VALUE")),
                "new_value": _text(params.get("NEW_VALUE")),
                "org_unit_name": params.get("ORG_UNIT_NAME"),
                "role_id": params.get("ROLE_ID"),
                "role_name": params.get("ROLE_NAME"),
                "api_client_name": params.get("API_CLIENT_NAME"),
                "api_scopes": _list(params.get("API_SCOPES")),
                "email_monitor_dest_email": params.get("EMAIL_MONITOR_DEST_EMAIL"),
            }
            dest = params.get("EMAIL_MONITOR_DEST_EMAIL")
            if dest:
                row["related"]["user"].append(dest)
        rows.append(row)
    return rows
