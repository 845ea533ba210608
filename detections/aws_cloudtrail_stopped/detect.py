ACTIONS = {"StopLogging", "DeleteTrail", "UpdateTrail"}


def detect(record):
    if record.deepget("event.provider") != "cloudtrail.amazonaws.com":
        return False
    if record.deepget("event.outcome") != "success":
        return False
    action = record.deepget("event.action")
    if action == "UpdateTrail":
        # Only an update that turns logging of management events off matters here.
        return '"IncludeManagementEvents":false' in (
            record.deepget("aws.cloudtrail.request_parameters") or ""
        )
    return action in ACTIONS


def title(record):
    return f"CloudTrail {record.deepget('event.action')} by {record.deepget('user.name', 'unknown')} in {record.deepget('cloud.account.id', '?')}"


def dedupe(record):
    return record.deepget("cloud.account.id", "unknown")


def alert_context(record):
    return {
        "action": record.deepget("event.action"),
        "user": record.deepget("user.name"),
        "request": record.deepget("aws.cloudtrail.request_parameters"),
    }
