import math
from collections import Counter

MIN_LABEL = 30  # characters in one label
MIN_CHUNK = 16  # labels this long or longer carry data
MIN_SUBDOMAIN = 60  # characters of such labels left of the registered domain
MIN_ENTROPY = 4.0  # bits per character, exclusive: hex (hashes) cannot exceed 4.0
REVERSE_ZONES = (".in-addr.arpa", ".ip6.arpa")


def _entropy(text):
    n = len(text)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text.lower()).values())


def _subdomain(record):
    sub = record.deepget("dns.question.subdomain")
    if sub:
        return str(sub)
    name = str(record.deepget("dns.question.name") or "")
    domain = str(record.deepget("dns.question.registered_domain") or "")
    if domain and name.endswith("." + domain):
        return name[: -len(domain) - 1]
    return ""


def _signal(record):
    """(longest label, its entropy, data characters, their entropy).

    Data characters are the labels of MIN_CHUNK or more characters, joined: a payload split
    over several labels; short labels (www, v1, 0a) are left out.
    """
    labels = _subdomain(record).split(".")
    longest = max(labels, key=len)
    data = "".join(label for label in labels if len(label) >= MIN_CHUNK)
    return longest, _entropy(longest), len(data), _entropy(data)


def detect(record):
    name = str(record.deepget("dns.question.name") or "").lower().rstrip(".")
    if not name or name.endswith(REVERSE_ZONES):
        return False
    longest, label_entropy, data_len, data_entropy = _signal(record)
    if len(longest) >= MIN_LABEL and label_entropy > MIN_ENTROPY:
        return True
    return data_len >= MIN_SUBDOMAIN and data_entropy > MIN_ENTROPY


def _domain(record):
    return record.deepget("dns.question.registered_domain") or record.deepget(
        "dns.question.name", "?"
    )


def title(record):
    return (
        f"Possible DNS tunnelling from {record.deepget('source.ip', '?')} through {_domain(record)}"
    )


def dedupe(record):
    return f"{record.deepget('source.ip', '?')}|{_domain(record)}"


def alert_context(record):
    longest, label_entropy, data_len, data_entropy = _signal(record)
    return {
        "source_ip": record.deepget("source.ip"),
        "resolver": record.deepget("destination.ip"),
        "domain": _domain(record),
        "query": record.deepget("dns.question.name"),
        "query_type": record.deepget("dns.question.type"),
        "longest_label": len(longest),
        "label_entropy": round(label_entropy, 2),
        "data_chars": data_len,
        "data_entropy": round(data_entropy, 2),
        "zeek_uid": record.deepget("zeek.uid"),
    }
