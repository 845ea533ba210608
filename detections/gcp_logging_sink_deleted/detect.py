import json


def _request(record):
    try:
        request = json.loads(record.deepget("gcp.audit.request") or "{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def detect(record):
    if record.deepget("event.outcome") != "success":
        return False
    action = record.deepget("event.action") or ""
    if action.endswith("ConfigServiceV2.DeleteSink"):
        return True
    if action.endswith("ConfigServiceV2.UpdateSink"):
        sink = _request(record).get("sink")
        return isinstance(sink, dict) and sink.get("disabled") is True
    return False


def _sink(record):
    return record.deepget("gcp.audit.resource_name") or "?"


def title(record):
    verb = (
        "deleted" if (record.deepget("event.action") or "").endswith("DeleteSink") else "disabled"
    )
    via = record.deepget("gcp.audit.delegation") or []
    by = record.deepget("user.name", "someone")
    if via:
        by = f"{by} (impersonated by {', '.join(via)})"
    return f"Log sink {_sink(record)} {verb} by {by}"


def dedupe(record):
    return _sink(record)


def alert_context(record):
    return {
        "sink": _sink(record),
        "project": record.deepget("cloud.project.id"),
        "actor": record.deepget("user.name"),
        "delegation": record.deepget("gcp.audit.delegation"),
        "source_ip": record.deepget("source.ip"),
        "method": record.deepget("event.action"),
    }
