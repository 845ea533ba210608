def _addresses(record):
    return [str(a).lower() for a in record.deepget("o365.audit.forwarding.addresses") or []]


def _mailbox(record):
    target = record.deepget("user.target.name")
    if target and "@" in str(target):
        return str(target).lower()
    return str(record.deepget("user.email") or record.deepget("user.id") or "unknown").lower()


def _own_domains(record):
    domains = {str(record.deepget("user.domain") or "").lower()}
    for who in (record.deepget("user.email"), record.deepget("user.target.name")):
        if who and "@" in str(who):
            domains.add(str(who).rpartition("@")[2].lower())
    domains.discard("")
    return domains


def _outside(address, domains):
    domain = address.rpartition("@")[2]
    return not any(domain == d or domain.endswith("." + d) for d in domains)


def _external(record):
    addresses = _addresses(record)
    domains = _own_domains(record)
    return [a for a in addresses if not domains or _outside(a, domains)]


def detect(record):
    if record.deepget("event.outcome") != "success" or not _addresses(record):
        return False
    flag = record.deepget("o365.audit.forwarding.external")
    if flag is not None:
        return flag is True
    # The transform could not tell (no domain known): judge from what the record carries.
    return bool(_external(record))


def title(record):
    targets = ", ".join(_external(record) or _addresses(record))
    return (
        f"Mail of {_mailbox(record)} forwarded to {targets}"
        f" ({record.deepget('event.action')} by {record.deepget('user.email') or record.deepget('user.name', '?')})"
    )


def dedupe(record):
    return _mailbox(record)


def alert_context(record):
    return {
        "mailbox": _mailbox(record),
        "actor": record.deepget("user.email") or record.deepget("user.name"),
        "operation": record.deepget("event.action"),
        "forward_to": _addresses(record),
        "inbox_rule": record.deepget("o365.audit.inbox_rule_name"),
        "source_ip": record.deepget("source.ip"),
        "parameters": record.deepget("o365.audit.parameters"),
    }
