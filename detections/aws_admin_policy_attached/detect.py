import json

ACTIONS = {"AttachUserPolicy", "AttachGroupPolicy", "AttachRolePolicy"}


def _params(record):
    try:
        return json.loads(record.deepget("aws.cloudtrail.request_parameters") or "{}")
    except ValueError:
        return {}


def detect(record):
    if (
        record.deepget("event.action") not in ACTIONS
        or record.deepget("event.outcome") != "success"
    ):
        return False
    return str(_params(record).get("policyArn", "")).endswith(":policy/AdministratorAccess")


def title(record):
    p = _params(record)
    who = p.get("userName") or p.get("groupName") or p.get("roleName") or "?"
    return f"AdministratorAccess attached to {who} by {record.deepget('user.name', 'someone')}"


def dedupe(record):
    p = _params(record)
    return p.get("userName") or p.get("groupName") or p.get("roleName") or "unknown"


def alert_context(record):
    return {"actor": record.deepget("user.name"), "request": _params(record)}
