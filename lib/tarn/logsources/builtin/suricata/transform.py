"""Suricata EVE JSON (alert, dns, http, flow) -> ECS, one table each (suricata_alert, ...).

Timestamps look like `2026-11-20T04:31:02.123456+0000`. Alerts are `event.kind: alert` with
`event.severity` as Suricata gives it (1 high, 2 medium, 3 low). DNS records are read in both
the EVE v2 layout (Suricata 6-7: `rrname`/`rrtype` at the top of `dns`) and the v3 layout
(Suricata 8: `queries` list). Other event types (stats, tls, fileinfo, anomaly, ...) are not
collected and are refused with that reason.

The registered domain of DNS names is found with a short list of two-label public suffixes,
not the full Public Suffix List: good for grouping by domain, not authoritative.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tarn.logsources.helpers import (
    as_dict,
    digits_int_or_none,
    json_text_nonempty,
    split_domain,
    strict_ip_or_none,
)

_DNS_FLAGS = (("aa", "AA"), ("tc", "TC"), ("rd", "RD"), ("ra", "RA"), ("ad", "AD"), ("cd", "CD"))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)  # 3.11+ reads the +0000 offset form too
    except ValueError:
        raise ValueError(f"EVE timestamp {value!r} is not ISO 8601") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


_ip = lru_cache(maxsize=8192)(strict_ip_or_none)


def _sum(a: int | None, b: int | None) -> int | None:
    return a + b if a is not None and b is not None else None


# --- common ----------------------------------------------------------------------------------


def _base(record: dict[str, Any], table: str) -> dict[str, Any]:
    src = _ip(record.get("src_ip"))
    dst = _ip(record.get("dest_ip"))
    proto = record.get("proto")
    flow = as_dict(record.get("flow"))
    to_server_pkts = digits_int_or_none(flow.get("pkts_toserver"))
    to_client_pkts = digits_int_or_none(flow.get("pkts_toclient"))
    to_server_bytes = digits_int_or_none(flow.get("bytes_toserver"))
    to_client_bytes = digits_int_or_none(flow.get("bytes_toclient"))
    flow_id = record.get("flow_id")
    return {
        "_table": table,
        "ts": _time(record.get("timestamp")),
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"]},
        "observer": {
            "hostname": record.get("host"),
            "type": "ids",
            "vendor": "OISF",
            "product": "Suricata",
            "ingress": {"interface": {"name": record.get("in_iface")}},
        },
        "source": {
            "ip": src,
            "port": digits_int_or_none(record.get("src_port")),
            "bytes": to_server_bytes,
            "packets": to_server_pkts,
        },
        "destination": {
            "ip": dst,
            "port": digits_int_or_none(record.get("dest_port")),
            "bytes": to_client_bytes,
            "packets": to_client_pkts,
        },
        "network": {
            "transport": proto.lower() if isinstance(proto, str) else None,
            "protocol": record.get("app_proto")
            if record.get("app_proto") not in (None, "failed")
            else None,
            "community_id": record.get("community_id"),
            "bytes": _sum(to_server_bytes, to_client_bytes),
            "packets": _sum(to_server_pkts, to_client_pkts),
        },
        "suricata": {
            "eve": {
                "event_type": record.get("event_type"),
                "flow_id": str(flow_id) if flow_id is not None else None,
                "tx_id": digits_int_or_none(record.get("tx_id")),
                "pkt_src": record.get("pkt_src"),
                "direction": record.get("direction"),
                "vlan": [v for v in record.get("vlan") or [] if isinstance(v, int)],
            }
        },
        "related": {"ip": [ip for ip in (src, dst) if ip], "hosts": [], "user": [], "hash": []},
    }


def _http_fields(http: dict[str, Any], out: dict[str, Any]) -> None:
    """ECS url/http/user_agent from an EVE `http` object (http events and alerts)."""
    host = http.get("hostname")
    uri = http.get("url")
    path, query = None, None
    if isinstance(uri, str):
        path, _, query = uri.partition("?")
    status = digits_int_or_none(http.get("status"))
    port = digits_int_or_none(http.get("http_port"))
    full = None
    if host and isinstance(uri, str):
        full = uri if uri.startswith(("http://", "https://")) else f"http://{host}{uri}"
        if port and not uri.startswith(("http://", "https://")):
            full = f"http://{host}:{port}{uri}"
    out["url"] = {
        "original": uri,
        "full": full,
        "domain": host,
        "path": path,
        "query": query or None,
        "port": port,
    }
    out["http"] = {
        "version": http["protocol"].partition("/")[2] or None
        if isinstance(http.get("protocol"), str)
        else None,
        "request": {
            "method": http.get("http_method"),
            "referrer": http.get("http_refer"),
        },
        "response": {
            "status_code": status,
            "body": {"bytes": digits_int_or_none(http.get("length"))},
            "mime_type": http.get("http_content_type"),
        },
    }
    out["user_agent"] = {"original": http.get("http_user_agent")}
    if host and not _ip(host):
        # The server's name: the destination, unless the alerting packet went to the client.
        server = "source" if out["suricata"]["eve"]["direction"] == "to_client" else "destination"
        out[server]["domain"] = host
        out["related"]["hosts"].append(host)


# --- per event type ----------------------------------------------------------------------


def _alert(record: dict[str, Any], out: dict[str, Any]) -> None:
    alert = as_dict(record.get("alert"))
    if not alert:
        raise ValueError("EVE alert record has no alert object")
    action = alert.get("action")
    severity = digits_int_or_none(alert.get("severity"))
    sid = digits_int_or_none(alert.get("signature_id"))
    out["event"].update(
        kind="alert",
        category=["network", "intrusion_detection"],
        type=["denied"] if action == "blocked" else ["allowed"],
        action=action,
        severity=severity,
    )
    out["rule"] = {
        "id": str(sid) if sid is not None else None,
        "name": alert.get("signature"),
        "category": alert.get("category"),
        "version": str(alert["rev"]) if alert.get("rev") is not None else None,
    }
    http = as_dict(record.get("http"))
    if http:
        _http_fields(http, out)
    dns = as_dict(record.get("dns"))
    names = _dns_names(dns)
    if names:
        out["dns"] = {"question": {"name": names[0][0]}}
        out["related"]["hosts"].extend(n for n, _ in names)
    tls = as_dict(record.get("tls"))
    if tls.get("sni"):
        out["tls"] = {"client": {"server_name": tls["sni"]}}
        out["related"]["hosts"].append(tls["sni"])
    out["suricata"]["eve"]["alert"] = {
        "gid": digits_int_or_none(alert.get("gid")),
        "signature_id": sid,
        "rev": digits_int_or_none(alert.get("rev")),
        "severity": severity,
        "action": action,
        "metadata": json_text_nonempty(alert.get("metadata"), sort_keys=True),
    }
    out["suricata"]["eve"]["app_layer"] = json_text_nonempty(
        {k: record[k] for k in ("http", "dns", "tls", "smb", "ssh", "files") if k in record},
        sort_keys=True,
    )
    out["suricata"]["eve"]["payload_printable"] = record.get("payload_printable")


def _dns_names(dns: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(name, type) of the questions: v2 (rrname at the top, or a query list in alerts), v3."""
    if isinstance(dns.get("queries"), list):
        return [
            (q["rrname"], q.get("rrtype"))
            for q in dns["queries"]
            if isinstance(q, dict) and isinstance(q.get("rrname"), str)
        ]
    if isinstance(dns.get("query"), list):  # the dns object of an alert (EVE v2)
        return [
            (q["rrname"], q.get("rrtype"))
            for q in dns["query"]
            if isinstance(q, dict) and isinstance(q.get("rrname"), str)
        ]
    if isinstance(dns.get("rrname"), str):
        return [(dns["rrname"], dns.get("rrtype"))]
    return []


def _dns(record: dict[str, Any], out: dict[str, Any]) -> None:
    dns = as_dict(record.get("dns"))
    if not dns:
        raise ValueError("EVE dns record has no dns object")
    names = _dns_names(dns)
    name, qtype = names[0] if names else (None, None)
    registered, subdomain, tld = split_domain(name) if name else (None, None, None)
    kind = dns.get("type")
    kind = "answer" if kind in ("answer", "response") else "query" if kind == "request" else kind
    answers = [a for a in dns.get("answers") or [] if isinstance(a, dict)]
    resolved = [ip for ip in (_ip(a.get("rdata")) for a in answers) if ip]
    grouped = as_dict(dns.get("grouped"))
    if not answers and grouped:  # answers logged in grouped form only
        resolved = [ip for t in ("A", "AAAA") for ip in map(_ip, grouped.get(t) or []) if ip]
    rcode = dns.get("rcode")
    flags = [ecs for key, ecs in _DNS_FLAGS if dns.get(key) is True]
    tx = dns.get("id")
    out["event"]["outcome"] = (
        None
        if kind != "answer" or rcode is None
        else "success"
        if rcode == "NOERROR"
        else "failure"
    )
    out["network"]["protocol"] = "dns"
    out["dns"] = {
        "id": str(tx) if tx is not None else None,
        "type": kind,
        "op_code": str(dns["opcode"]) if dns.get("opcode") is not None else None,
        "question": {
            "name": name,
            "type": qtype,
            "registered_domain": registered,
            "subdomain": subdomain,
            "top_level_domain": tld,
        },
        "response_code": rcode,
        "header_flags": flags,
        "resolved_ip": resolved,
    }
    out["suricata"]["eve"]["dns"] = {
        "version": digits_int_or_none(dns.get("version")),
        "flags": dns.get("flags"),
        "tx_id": digits_int_or_none(dns.get("tx_id")),
        "answers": json_text_nonempty(answers, sort_keys=True),
        "grouped": json_text_nonempty(grouped, sort_keys=True),
        "queries": json_text_nonempty(dns.get("queries"), sort_keys=True),
    }
    out["related"]["hosts"].extend(n for n, _ in names)
    out["related"]["ip"].extend(resolved)


def _http(record: dict[str, Any], out: dict[str, Any]) -> None:
    http = as_dict(record.get("http"))
    if not http:
        raise ValueError("EVE http record has no http object")
    _http_fields(http, out)
    status = out["http"]["response"]["status_code"]
    out["event"]["category"] = ["network", "web"]
    out["event"]["outcome"] = None if status is None else "success" if status < 400 else "failure"
    out["network"]["protocol"] = "http"
    out["suricata"]["eve"]["http"] = {
        "protocol": http.get("protocol"),
        "redirect": http.get("redirect"),
        "xff": http.get("xff"),
        "request_headers": json_text_nonempty(http.get("request_headers"), sort_keys=True),
        "response_headers": json_text_nonempty(http.get("response_headers"), sort_keys=True),
    }


def _flow(record: dict[str, Any], out: dict[str, Any]) -> None:
    flow = as_dict(record.get("flow"))
    if not flow:
        raise ValueError("EVE flow record has no flow object")
    start = _time(flow.get("start"))
    end = _time(flow.get("end"))
    tcp = as_dict(record.get("tcp"))
    out["event"].update(
        type=["connection", "end"],
        start=start,
        end=end,
        duration=round((end - start).total_seconds() * 1e9) if start and end else None,
    )
    out["suricata"]["eve"]["flow"] = {
        "state": flow.get("state"),
        "reason": flow.get("reason"),
        "alerted": flow.get("alerted"),
        "age": digits_int_or_none(flow.get("age")),
    }
    out["suricata"]["eve"]["tcp"] = {
        "flags": tcp.get("tcp_flags"),
        "flags_ts": tcp.get("tcp_flags_ts"),
        "flags_tc": tcp.get("tcp_flags_tc"),
        "state": tcp.get("state"),
    }


_EVENTS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "alert": _alert,
    "dns": _dns,
    "http": _http,
    "flow": _flow,
}


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"an EVE record is a JSON object, got {type(record).__name__}")
    event_type = record.get("event_type")
    handler = _EVENTS.get(event_type) if isinstance(event_type, str) else None
    if handler is None:
        raise ValueError(
            f"EVE event_type {event_type!r} is not collected (known: {', '.join(_EVENTS)})"
        )
    if not record.get("timestamp"):
        raise ValueError("EVE record has no timestamp")
    out = _base(record, str(event_type))
    handler(record, out)
    related = out["related"]
    for key in ("ip", "hosts"):
        if len(related[key]) > 1:
            related[key] = list(dict.fromkeys(related[key]))
    return out
