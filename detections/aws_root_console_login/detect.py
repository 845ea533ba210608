def detect(record):
    return (
        record.deepget("event.action") == "ConsoleLogin"
        and record.deepget("aws.cloudtrail.user_identity.type") == "Root"
        and record.deepget("event.outcome") == "success"
    )


def title(record):
    return f"Root console login to account {record.deepget('cloud.account.id', '?')} from {record.deepget('source.address', '?')}"


def dedupe(record):
    return record.deepget("cloud.account.id", "unknown")


def alert_context(record):
    return {
        "account": record.deepget("cloud.account.id"),
        "source_ip": record.deepget("source.address"),
        "user_agent": record.deepget("user_agent.original"),
        "mfa_used": record.deepget("aws.cloudtrail.console_login.mfa_used"),
    }
