PUSH_FACTORS = {"duo_push", "verified_duo_push"}
DENIALS = {"user_cancelled", "no_response", "user_mistake", "user_marked_fraud"}


def detect(record):
    return (
        record.deepget("duo.auth.factor") in PUSH_FACTORS
        and record.deepget("duo.auth.result") in ("denied", "fraud")
        and record.deepget("duo.auth.reason") in DENIALS
    )


def title(record):
    return (
        f"Duo push fatigue: pushes to {record.deepget('user.name', 'a user')} denied repeatedly"
        f" (access from {record.deepget('source.ip', '?')})"
    )


def dedupe(record):
    return record.deepget("user.name") or record.deepget("user.id") or "unknown"


def alert_context(record):
    return {
        "user": record.deepget("user.name"),
        "application": record.deepget("duo.auth.application.name"),
        "access_ip": record.deepget("source.ip"),
        "access_country": record.deepget("source.geo.country_name"),
        "reason": record.deepget("duo.auth.reason"),
    }
