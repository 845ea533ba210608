import json

PUBLIC = {"allUsers", "allAuthenticatedUsers"}


def _public_grants(record):
    try:
        deltas = json.loads(record.deepget("gcp.audit.binding_deltas") or "[]")
    except ValueError:
        return []
    if not isinstance(deltas, list):
        return []
    return [
        d
        for d in deltas
        if isinstance(d, dict) and d.get("action") == "ADD" and d.get("member") in PUBLIC
    ]


def _is_bucket(record):
    return record.deepget("gcp.audit.resource_type") == "gcs_bucket" or str(
        record.deepget("gcp.audit.resource_name") or ""
    ).startswith("projects/_/buckets/")


def _bucket(record):
    return str(record.deepget("gcp.audit.resource_name") or "?").rpartition("/")[2]


def detect(record):
    return (
        record.deepget("event.outcome") == "success"
        and _is_bucket(record)
        and bool(_public_grants(record))
    )


def title(record):
    grants = ", ".join(f"{g.get('member')} {g.get('role')}" for g in _public_grants(record))
    return f"Bucket {_bucket(record)} made public ({grants}) by {record.deepget('user.name', 'someone')}"


def dedupe(record):
    return _bucket(record)


def alert_context(record):
    return {
        "bucket": _bucket(record),
        "project": record.deepget("cloud.project.id"),
        "grants": _public_grants(record),
        "actor": record.deepget("user.name"),
        "source_ip": record.deepget("source.ip"),
        "service_account_key": record.deepget("gcp.audit.service_account_key_name"),
    }
