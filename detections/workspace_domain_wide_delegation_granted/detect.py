# Scopes that reach every mailbox, file or account of the domain.
SENSITIVE_SCOPE_PREFIXES = (
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/admin.directory",
    "https://www.googleapis.com/auth/cloud-platform",
)


def _scopes(record):
    return list(record.deepget("google_workspace.admin.api_scopes") or [])


def detect(record):
    return (
        record.deepget("event.action") == "AUTHORIZE_API_CLIENT_ACCESS"
        and record.deepget("event.outcome") != "failure"
    )


def severity(record):
    if any(s.startswith(SENSITIVE_SCOPE_PREFIXES) for s in _scopes(record)):
        return "critical"
    return "high"


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} gave API client"
        f" {record.deepget('google_workspace.admin.api_client_name', '?')} domain-wide delegation"
        f" ({len(_scopes(record))} scopes)"
    )


def dedupe(record):
    return record.deepget("google_workspace.admin.api_client_name") or "unknown"


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "client_id": record.deepget("google_workspace.admin.api_client_name"),
        "scopes": _scopes(record),
        "source_ip": record.deepget("source.ip"),
        "country": record.deepget("source.geo.country_iso_code"),
    }
