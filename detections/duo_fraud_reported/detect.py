def detect(record):
    return (
        record.deepget("duo.auth.result") == "fraud"
        or record.deepget("duo.auth.reason") == "user_marked_fraud"
        or record.deepget("event.reason") == "user_marked_fraud"
    )


def title(record):
    return (
        f"{record.deepget('user.name', 'a user')} reported a Duo request to"
        f" {record.deepget('duo.auth.application.name', 'an application')} as fraud"
        f" (access from {record.deepget('source.ip', '?')})"
    )


def dedupe(record):
    return record.deepget("user.name") or record.deepget("user.id") or "unknown"


def alert_context(record):
    return {
        "user": record.deepget("user.name"),
        "application": record.deepget("duo.auth.application.name"),
        "factor": record.deepget("duo.auth.factor"),
        "access_ip": record.deepget("source.ip"),
        "access_country": record.deepget("source.geo.country_name"),
        "auth_device": record.deepget("duo.auth.auth_device.name"),
        "auth_device_ip": record.deepget("duo.auth.auth_device.ip"),
    }
