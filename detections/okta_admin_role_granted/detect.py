GRANTS = {"user.account.privilege.grant", "group.privilege.grant"}


def _privilege(record):
    return record.deepget("okta.debug_context.debug_data.privilege_granted") or "an admin role"


def _grantee(record):
    return (
        record.deepget("user.target.name")
        or record.deepget("user.target.group.name")
        or record.deepget("user.target.id")
        or "unknown"
    )


def detect(record):
    return record.deepget("event.action") in GRANTS and record.deepget("event.outcome") == "success"


def severity(record):
    return "critical" if "super" in _privilege(record).lower() else "high"


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} granted Okta {_privilege(record)}"
        f" to {_grantee(record)}"
    )


def dedupe(record):
    return _grantee(record)


def alert_context(record):
    to_group = record.deepget("event.action") == "group.privilege.grant"
    return {
        "actor": record.deepget("user.name"),
        "grantee": _grantee(record),
        "grantee_kind": "group" if to_group else "user",
        "privilege": record.deepget("okta.debug_context.debug_data.privilege_granted"),
        "source_ip": record.deepget("source.ip"),
        "country": record.deepget("source.geo.country_name"),
        "actor_session": record.deepget("okta.authentication_context.external_session_id"),
    }
