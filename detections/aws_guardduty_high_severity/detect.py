HIGH = 7.0
CRITICAL = 9.0

# Finding types start with their threat purpose; the ATT&CK tactic it corresponds to.
PURPOSE_TACTIC = {
    "Backdoor": "command_and_control",
    "Behavior": "discovery",
    "CredentialAccess": "credential_access",
    "Cryptocurrency": "impact",
    "CryptoCurrency": "impact",
    "DefenseEvasion": "defense_evasion",
    "Discovery": "discovery",
    "Execution": "execution",
    "Exfiltration": "exfiltration",
    "Impact": "impact",
    "InitialAccess": "initial_access",
    "Persistence": "persistence",
    "PrivilegeEscalation": "privilege_escalation",
    "Recon": "reconnaissance",
    "Stealth": "defense_evasion",
    "Trojan": "command_and_control",
    "UnauthorizedAccess": "initial_access",
}


def _severity(record):
    value = record.deepget("aws.guardduty.severity")
    if value is None:
        value = record.deepget("event.severity", 0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _type(record):
    return record.deepget("rule.name") or record.deepget("rule.id") or "unknown finding"


def _resource(record):
    names = record.deepget("aws.guardduty.s3_bucket_names") or []
    return (
        record.deepget("cloud.instance.id")
        or record.deepget("aws.guardduty.eks_cluster_name")
        or record.deepget("user.name")
        or (names[0] if names else None)
        or record.deepget("aws.guardduty.resource_type")
        or "?"
    )


def detect(record):
    return _severity(record) >= HIGH and record.deepget("aws.guardduty.archived") is not True


def severity(record):
    return "critical" if _severity(record) >= CRITICAL else "high"


def title(record):
    return (
        f"GuardDuty {_type(record)} (severity {_severity(record):g}) on {_resource(record)}"
        f" in {record.deepget('cloud.account.id', '?')}/{record.deepget('cloud.region', '?')}"
    )


def dedupe(record):
    # The finding id stays the same while GuardDuty updates a recurring finding.
    return record.deepget("event.id") or record.deepget("aws.guardduty.arn") or _type(record)


def alert_context(record):
    finding = _type(record)
    return {
        "finding_type": finding,
        "severity": _severity(record),
        "count": record.deepget("aws.guardduty.count"),
        "attack_tactic": PURPOSE_TACTIC.get(finding.split(":", 1)[0]),
        "account": record.deepget("cloud.account.id"),
        "region": record.deepget("cloud.region"),
        "resource_type": record.deepget("aws.guardduty.resource_type"),
        "resource": _resource(record),
        "source_ip": record.deepget("source.ip"),
        "destination_ip": record.deepget("destination.ip"),
        "dns_query": record.deepget("dns.question.name"),
        "description": record.deepget("aws.guardduty.description") or record.deepget("message"),
    }
