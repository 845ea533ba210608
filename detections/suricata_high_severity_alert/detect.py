# Classtypes that say the attack worked or malware is active (Suricata's classification.config).
SUCCESS_CATEGORIES = {
    "A Network Trojan was detected",
    "Successful Administrator Privilege Gain",
    "Successful User Privilege Gain",
    "Executable code was detected",
    "Malware Command and Control Activity Detected",
}


def _severity(record):
    value = record.deepget("suricata.eve.alert.severity")
    if value is None:
        value = record.deepget("event.severity")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def detect(record):
    return _severity(record) == 1


def severity(record):
    action = record.deepget("suricata.eve.alert.action") or record.deepget("event.action")
    if action != "blocked" and record.deepget("rule.category") in SUCCESS_CATEGORIES:
        return "critical"
    return "high"


def title(record):
    return (
        f"Suricata: {record.deepget('rule.name', 'severity 1 alert')}"
        f" ({record.deepget('source.ip', '?')} -> {record.deepget('destination.ip', '?')}:{record.deepget('destination.port', '?')})"
    )


def dedupe(record):
    return (
        f"{record.deepget('rule.id', '?')}|{record.deepget('source.ip', '?')}"
        f"|{record.deepget('destination.ip', '?')}"
    )


def alert_context(record):
    return {
        "signature": record.deepget("rule.name"),
        "signature_id": record.deepget("rule.id"),
        "category": record.deepget("rule.category"),
        "action": record.deepget("suricata.eve.alert.action") or record.deepget("event.action"),
        "source": f"{record.deepget('source.ip', '?')}:{record.deepget('source.port', '?')}",
        "destination": f"{record.deepget('destination.ip', '?')}:{record.deepget('destination.port', '?')}",
        "protocol": record.deepget("network.protocol"),
        "url": record.deepget("url.full"),
        "sensor": record.deepget("observer.hostname"),
        "community_id": record.deepget("network.community_id"),
    }
