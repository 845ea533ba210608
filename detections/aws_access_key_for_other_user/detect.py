def detect(record):
    target = record.deepget("user.target.name")
    return (
        record.deepget("event.action") == "CreateAccessKey"
        and record.deepget("event.outcome") == "success"
        and bool(target)
        and target != record.deepget("user.name")
    )


def title(record):
    return f"{record.deepget('user.name', 'someone')} created an access key for {record.deepget('user.target.name')}"


def dedupe(record):
    return f"{record.deepget('user.name')}->{record.deepget('user.target.name')}"


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "target": record.deepget("user.target.name"),
        "source_ip": record.deepget("source.address"),
    }
