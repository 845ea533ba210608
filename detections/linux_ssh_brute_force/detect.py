def detect(record):
    return (
        record.deepget("event.action") == "ssh_login"
        and record.deepget("event.outcome") == "failure"
        and bool(record.deepget("source.ip"))
    )


def title(record):
    return f"SSH brute force from {record.deepget('source.ip')} against {record.deepget('host.hostname', '?')}"


def dedupe(record):
    return record.deepget("source.ip")


def alert_context(record):
    return {
        "source_ip": record.deepget("source.ip"),
        "host": record.deepget("host.hostname"),
        "user": record.deepget("user.name"),
        "invalid_user": record.deepget("linux_auth.ssh.invalid_user"),
        "method": record.deepget("linux_auth.ssh.method"),
        "repeated": record.deepget("linux_auth.repeated"),
    }
