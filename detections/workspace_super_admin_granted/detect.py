SUPER_ADMIN_ROLE = "_SEED_ADMIN_ROLE"


def detect(record):
    if record.deepget("event.outcome") == "failure":
        return False
    action = record.deepget("event.action")
    if action == "GRANT_ADMIN_PRIVILEGE":
        return True
    return (
        action == "ASSIGN_ROLE"
        and record.deepget("google_workspace.admin.role_name") == SUPER_ADMIN_ROLE
    )


def _grantee(record):
    return record.deepget("user.target.email") or record.deepget("user.target.name") or "unknown"


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} made {_grantee(record)} a Workspace super admin"
    )


def dedupe(record):
    return _grantee(record)


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "grantee": _grantee(record),
        "event": record.deepget("event.action"),
        "role": record.deepget("google_workspace.admin.role_name"),
        "source_ip": record.deepget("source.ip"),
        "country": record.deepget("source.geo.country_iso_code"),
        "customer": record.deepget("organization.id"),
    }
