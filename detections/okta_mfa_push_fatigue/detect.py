DENY_PUSH = "user.mfa.okta_verify.deny_push"
MFA_STEP = "user.authentication.auth_via_mfa"
PUSH_FACTORS = {"OKTA_VERIFY_PUSH", "PUSH"}


def detect(record):
    action = record.deepget("event.action")
    if action == DENY_PUSH:
        return True
    return (
        action == MFA_STEP
        and record.deepget("event.outcome") == "failure"
        and record.deepget("okta.debug_context.debug_data.factor") in PUSH_FACTORS
    )


def title(record):
    return (
        f"Okta Verify push fatigue: pushes to {record.deepget('user.name', 'a user')} rejected"
        f" repeatedly (from {record.deepget('source.ip', '?')})"
    )


def dedupe(record):
    return record.deepget("user.name") or record.deepget("user.id") or "unknown"


def alert_context(record):
    return {
        "user": record.deepget("user.name"),
        "source_ip": record.deepget("source.ip"),
        "country": record.deepget("source.geo.country_name"),
        "asn_org": record.deepget("source.as.organization.name"),
        "user_agent": record.deepget("user_agent.original"),
        "session": record.deepget("okta.authentication_context.external_session_id"),
        "reason": record.deepget("event.reason"),
    }
