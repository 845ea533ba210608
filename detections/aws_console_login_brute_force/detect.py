def detect(record):
    return (
        record.deepget("event.action") == "ConsoleLogin"
        and record.deepget("event.outcome") == "failure"
    )


def title(record):
    return f"Repeated failed console logins for {record.deepget('user.name', 'unknown user')}"


def dedupe(record):
    return record.deepget("user.name", "unknown")


def alert_context(record):
    return {"user": record.deepget("user.name"), "source_ip": record.deepget("source.address")}
