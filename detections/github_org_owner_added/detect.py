ENTERPRISE_OWNER_ADDED = "business.add_admin"


def detect(record):
    action = record.deepget("event.action")
    if action == ENTERPRISE_OWNER_ADDED:
        return True
    permission = record.deepget("github.permission")
    if action == "org.add_member":
        return permission == "admin"
    if action == "org.update_member":
        return permission == "admin" and record.deepget("github.old_permission") != "admin"
    return False


def _scope(record):
    if record.deepget("event.action") == ENTERPRISE_OWNER_ADDED:
        return f"enterprise {record.deepget('github.business', '?')}"
    return f"organization {record.deepget('organization.name', '?')}"


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} made {record.deepget('user.target.name', '?')}"
        f" an owner of {_scope(record)}"
    )


def dedupe(record):
    return f"{_scope(record)}:{record.deepget('user.target.name', 'unknown')}"


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "new_owner": record.deepget("user.target.name"),
        "scope": _scope(record),
        "action": record.deepget("event.action"),
        "old_permission": record.deepget("github.old_permission"),
        "source_ip": record.deepget("source.ip"),
    }
