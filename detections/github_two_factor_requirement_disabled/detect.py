ACTIONS = {"org.disable_two_factor_requirement", "business.disable_two_factor_requirement"}


def _scope(record):
    if record.deepget("event.action", "").startswith("business."):
        return f"enterprise {record.deepget('github.business', '?')}"
    return f"organization {record.deepget('organization.name', '?')}"


def detect(record):
    return record.deepget("event.action") in ACTIONS


def title(record):
    return f"{record.deepget('user.name', 'someone')} turned off the 2FA requirement of {_scope(record)}"


def dedupe(record):
    return _scope(record)


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "scope": _scope(record),
        "source_ip": record.deepget("source.ip"),
        "actor_identity": record.deepget("github.external_identity_nameid"),
    }
