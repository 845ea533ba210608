"""Google Workspace activity (Admin SDK Reports API Activity resource) -> ECS.

One Activity holds one or more events (events[]), each with a type, a name and parameters;
each event becomes its own row. Login events go to the table google_workspace_login,
Admin console events to google_workspace_admin, the other applications (drive, token, saml,
...) to google_workspace with the parameters as JSON.

`transform_columns` gives the same rows for a batch of activities, with Arrow compute: the
activities with exactly one event (most of them); the others go through transform().

Parameters come as [{"name": ..., "value" | "multiValue" | "boolValue" | "intValue" |
"multiIntValue" | "messageValue": ...}]; they are flattened to {name: value} and kept whole
in google_workspace.parameters, and the well-known ones get fields of their own.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


def _outcome(name: str, params: dict[str, Any]) -> str | None:
    """event.outcome by the event's name, else by its challenge status (admin rows aside)."""
    outcome = _OUTCOMES.get(name)
    status = params.get("login_challenge_status")
    if outcome is None and isinstance(status, str):
        outcome = _CHALLENGE.get(status)
    return outcome


def _target(params: dict[str, Any]) -> Any:
    """user.target.name: the user an event is about."""
    return params.get("USER_EMAIL") or params.get("affected_email_address")


def _login_fields(params: dict[str, Any]) -> dict[str, Any]:
    """google_workspace.login of a login event."""
    return {
        "type": params.get("login_type"),
        "challenge_method": _list(params.get("login_challenge_method")),
        "challenge_status": params.get("login_challenge_status"),
        "failure_type": params.get("login_failure_type"),
        "is_suspicious": _bool(params.get("is_suspicious")),
        "is_second_factor": _bool(params.get("is_second_factor")),
    }


def _admin_fields(params: dict[str, Any]) -> dict[str, Any]:
    """google_workspace.admin of an Admin console event."""
    return {
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
        outcome = _outcome(name, params)
        if outcome is None and table == "admin":
            outcome = "success"  # the Admin console logs changes that were made
        target = _target(params)
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
            row["google_workspace"]["login"] = _login_fields(params)
        elif table == "admin":
            row["_table"] = "admin"
            row["google_workspace"]["admin"] = _admin_fields(params)
            dest = params.get("EMAIL_MONITOR_DEST_EMAIL")
            if dest:
                row["related"]["user"].append(dest)
        rows.append(row)
    return rows


# -- the batch version -----------------------------------------------------------------------------
_LOGIN = "google_workspace.login."
_ADMIN = "google_workspace.admin."
_STRINGS = pa.string()
_TEXTS = pa.list_(pa.string())
# The columns of an event's row that the event alone gives, with their Arrow types.
_EVENT_COLUMNS: dict[str, pa.DataType] = {
    "event.action": _STRINGS,
    "event.kind": _STRINGS,
    "event.category": _TEXTS,
    "event.type": _TEXTS,
    "event.outcome": _STRINGS,  # before the admin rule (Admin console changes succeed)
    "user.target.name": _STRINGS,
    "user.target.email": _STRINGS,
    "user.target.group.name": _STRINGS,
    "google_workspace.event.type": _STRINGS,
    "google_workspace.parameters": _STRINGS,
    _LOGIN + "type": _STRINGS,
    _LOGIN + "challenge_method": _TEXTS,
    _LOGIN + "challenge_status": _STRINGS,
    _LOGIN + "failure_type": _STRINGS,
    _LOGIN + "is_suspicious": pa.bool_(),
    _LOGIN + "is_second_factor": pa.bool_(),
    _ADMIN + "application_name": _STRINGS,
    _ADMIN + "setting_name": _STRINGS,
    _ADMIN + "old_value": _STRINGS,
    _ADMIN + "new_value": _STRINGS,
    _ADMIN + "org_unit_name": _STRINGS,
    _ADMIN + "role_id": _STRINGS,
    _ADMIN + "role_name": _STRINGS,
    _ADMIN + "api_client_name": _STRINGS,
    _ADMIN + "api_scopes": _TEXTS,
    _ADMIN + "email_monitor_dest_email": _STRINGS,
}
# Keyword columns taken from parameters as they are: a value that is not text makes the row
# path sideline the row (where its table has the column), so such records go through
# transform(). Per table: every table, all but login, login, admin.
_TEXT_COLUMNS = {
    "any": ("event.action", "google_workspace.event.type", "user.target.name"),
    "not_login": ("user.target.group.name",),
    "login": tuple(_LOGIN + k for k in ("type", "challenge_status", "failure_type")),
    "admin": tuple(
        _ADMIN + k
        for k in (
            "application_name",
            "setting_name",
            "org_unit_name",
            "role_id",
            "role_name",
            "api_client_name",
            "email_monitor_dest_email",
        )
    ),
}
_ENCODE = msgspec.json.Encoder().encode  # keys in their order: parameters keep theirs


def _event_columns(events: Any) -> dict[str, Any] | None:
    """The columns of the row of an activity's only event, as transform() makes them; None
    where transform() must decide (not exactly one event, no name, or an event it raises on)."""
    if type(events) is not list or len(events) != 1:
        return None
    event = events[0]
    if not isinstance(event, dict) or not event.get("name") or type(event["name"]) is not str:
        return None
    name = event["name"]
    try:
        return _event_row(event, name)
    except Exception:  # transform() raises on these parameters: it says why
        return None


def _event_row(event: dict[str, Any], name: str) -> dict[str, Any]:
    params = _params(event.get("parameters"))
    parameters = json.dumps(params, separators=(",", ":")) if params else None
    kind, category, types = _EVENTS.get(name) or _DEFAULT
    target = _target(params)
    out = {
        "event.action": name,
        "event.kind": kind,
        "event.category": category,
        "event.type": types,
        "event.outcome": _outcome(name, params),
        "user.target.name": target,
        "user.target.email": target if _email_domain(target) else None,
        "user.target.group.name": params.get("GROUP_EMAIL"),
        "google_workspace.event.type": event.get("type"),
        "google_workspace.parameters": parameters,
    }
    out.update((_LOGIN + k, v) for k, v in _login_fields(params).items())
    out.update((_ADMIN + k, v) for k, v in _admin_fields(params).items())
    return out


def _per_event(values: list[Any]) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """_event_columns per record, computed once per distinct events[] (by its JSON text, keys
    in order), and per table kind where a record must go through transform() instead."""
    texts: list[bytes | None] = []
    for v in values:
        try:
            texts.append(_ENCODE(v))
        except (TypeError, ValueError, UnicodeError, OverflowError):
            texts.append(None)  # not read here: transform() decides
    encoded = pc.dictionary_encode(pa.array(texts, pa.binary()))
    indices = encoded.indices
    # one record per distinct text stands for all that have it
    _, first = np.unique(indices.fill_null(-1).to_numpy(zero_copy_only=False), return_index=True)
    if indices.null_count:
        first = first[1:]
    found = [_event_columns(values[i]) for i in first.tolist()]
    columns: dict[str, pa.Array] = {}
    for name, type_ in _EVENT_COLUMNS.items():
        column = [None if f is None else f[name] for f in found]
        if type_ == _STRINGS:  # a value that is not text: its record is refused below
            column = [v if type(v) is str else None for v in column]
        columns[name] = pa.array(column, type_)
    refuse = {
        kind: [f is None or not all(_is_text(f[n]) for n in names) for f in found]
        for kind, names in _TEXT_COLUMNS.items()
    }
    return (
        {k: v.take(indices) for k, v in columns.items()},
        {k: pc.fill_null(pa.array(v, pa.bool_()).take(indices), True) for k, v in refuse.items()},
    )


def _is_text(value: Any) -> bool:
    return value is None or type(value) is str


@col.columnar(
    raw={
        "id.time": "string",
        "id.uniqueQualifier": "string",
        "id.applicationName": "string",
        "id.customerId": "string",
        "actor.email": "string",
        "actor.profileId": "string",
        "actor.callerType": "string",
        "actor.key": "string",
        "ipAddress": "string",
        "networkInfo.ipAsn": "list<long>",
        "networkInfo.regionCode": "string",
        "networkInfo.subdivisionCode": "string",
        "events": "json",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of activities with one event each; the others go through it."""
    app = batch["id.applicationName"]
    is_login = pc.fill_null(pc.equal(app, "login"), False)
    is_admin = pc.fill_null(pc.equal(app, "admin"), False)
    none = pa.scalar(None, pa.string())
    event, refuse = _per_event(batch.values("events"))
    row_path = pc.or_(
        pc.or_(refuse["any"], pc.and_(refuse["not_login"], pc.invert(is_login))),
        pc.or_(pc.and_(refuse["login"], is_login), pc.and_(refuse["admin"], is_admin)),
    )
    outcome = event.pop("event.outcome")
    admin_success = pc.and_(is_admin, pc.is_null(outcome))
    dest = pc.if_else(is_admin, event[_ADMIN + "email_monitor_dest_email"], none)
    email = batch["actor.email"]
    out = {
        col.ROW_PATH: row_path,  # e.g. several events: several rows, transform() makes them
        "_table": pc.if_else(is_login, "login", pc.if_else(is_admin, "admin", none)),
        # null: transform() sidelines the activity
        "ts": col.timestamps(batch["id.time"], iso_ts_or_none),
        "event.id": batch["id.uniqueQualifier"],
        "event.provider": app,
        "event.outcome": pc.if_else(admin_success, "success", outcome),
        **event,
        "user.name": email,
        "user.email": email,
        "user.id": batch["actor.profileId"],
        "user.domain": col.per_value(_email_domain, email, pa.string()),
        "source.ip": col.per_value(strict_ip_or_none, batch["ipAddress"], pa.string()),
        "source.geo.country_iso_code": batch["networkInfo.regionCode"],
        "source.geo.region_iso_code": batch["networkInfo.subdivisionCode"],
        "source.as.number": col.first(batch["networkInfo.ipAsn"]),
        "organization.id": batch["id.customerId"],
        "google_workspace.actor.caller_type": batch["actor.callerType"],
        "google_workspace.actor.key": batch["actor.key"],
    }
    # related.ip and related.user come from source.ip, user.name and user.target.name as for
    # rows; an email monitor's destination (Admin console) is a user of the row's own
    if pc.any(col.truthy(dest)).as_py():
        out["related.user"] = col.unique_values(email, event["user.target.name"], dest)
    return out
