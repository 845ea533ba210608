import json

METHODS = ("CreateServiceAccountKey", "UploadServiceAccountKey")


def _key_name(record):
    try:
        response = json.loads(record.deepget("gcp.audit.response") or "{}")
    except ValueError:
        return None
    return response.get("name") if isinstance(response, dict) else None


def _account(record):
    return (
        record.deepget("user.target.name")
        or record.deepget("gcp.audit.resource_name")
        or "a service account"
    )


def detect(record):
    action = record.deepget("event.action") or ""
    return record.deepget("event.outcome") == "success" and action.endswith(METHODS)


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} created a key for {_account(record)}"
        f" in {record.deepget('cloud.project.id', '?')}"
    )


def dedupe(record):
    return _account(record)


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "service_account": _account(record),
        "key": _key_name(record),
        "project": record.deepget("cloud.project.id"),
        "source_ip": record.deepget("source.ip"),
        "user_agent": record.deepget("user_agent.original"),
        "method": record.deepget("event.action"),
    }
