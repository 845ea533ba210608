"""Zeek conn, dns, http and ssl logs -> ECS, one table each (zeek_conn, zeek_dns, ...).

Records come from TSV logs (every value a string, `-` as None, sets and vectors as lists,
`_path` from the `#path` header) or from JSON logs (native JSON values; `_path` is there when
the json-streaming format wrote it). Without `_path` the log is told from its fields. Every
output row names its table in `_table`, so routing does not depend on `_path` being present.

`ts` is epoch seconds with a fraction (TSV text or JSON number) or ISO 8601 (JSON logs written
with ISO timestamps). The registered domain of DNS names is found with a short list of
two-label public suffixes, not the full Public Suffix List: good for grouping queries by
domain (e.g. to spot DNS tunnelling), not authoritative.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tarn.logsources.helpers import split_domain, strict_ip_or_none

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TLS_VERSIONS = {
    "TLSv10": ("tls", "1.0"),
    "TLSv11": ("tls", "1.1"),
    "TLSv12": ("tls", "1.2"),
    "TLSv13": ("tls", "1.3"),
    "SSLv2": ("ssl", "2.0"),
    "SSLv3": ("ssl", "3.0"),
    "DTLSv10": ("dtls", "1.0"),
    "DTLSv12": ("dtls", "1.2"),
    "DTLSv13": ("dtls", "1.3"),
}


# --- value readers: TSV gives text, JSON gives native values --------------------------------


def _ts(value: Any) -> datetime:
    if isinstance(value, str):
        seconds, dot, fraction = value.partition(".")
        if seconds.isdigit() and (not dot or fraction.isdigit()):
            micro = int((fraction + "000000")[:6]) if fraction else 0
            return datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=micro)
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"zeek ts {value!r} is neither epoch seconds nor ISO 8601") from None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    raise ValueError(f"zeek record has no usable ts ({value!r})")


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    try:
        return int(value)
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value == "T":
        return True
    if value == "F":
        return False
    return None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


_ip = lru_cache(maxsize=8192)(strict_ip_or_none)


# --- per log ---------------------------------------------------------------------------------


def _base(record: dict[str, Any], table: str) -> dict[str, Any]:
    src = _ip(record.get("id.orig_h"))
    dst = _ip(record.get("id.resp_h"))
    uid = record.get("uid")
    proto = record.get("proto")
    return {
        "_table": table,
        "ts": _ts(record.get("ts")),
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "id": uid},
        "source": {"ip": src, "port": _int(record.get("id.orig_p"))},
        "destination": {"ip": dst, "port": _int(record.get("id.resp_p"))},
        "network": {
            "transport": proto.lower() if isinstance(proto, str) else None,
            "community_id": record.get("community_id"),
        },
        "zeek": {"uid": uid},
        "related": {"ip": [ip for ip in (src, dst) if ip], "hosts": [], "user": [], "hash": []},
    }


def _direction(local_orig: bool | None, local_resp: bool | None) -> str | None:
    if local_orig is None or local_resp is None:
        return None
    if local_orig:
        return "internal" if local_resp else "outbound"
    return "inbound" if local_resp else "external"


def _conn(record: dict[str, Any], out: dict[str, Any]) -> None:
    duration = _float(record.get("duration"))
    orig_pkts = _int(record.get("orig_pkts"))
    resp_pkts = _int(record.get("resp_pkts"))
    orig_ip_bytes = _int(record.get("orig_ip_bytes"))
    resp_ip_bytes = _int(record.get("resp_ip_bytes"))
    local_orig = _bool(record.get("local_orig"))
    local_resp = _bool(record.get("local_resp"))
    services = record.get("service")
    service = services[0] if isinstance(services, list) and services else services
    out["event"]["type"] = ["connection"]
    out["event"]["duration"] = round(duration * 1e9) if duration is not None else None
    out["source"].update(bytes=orig_ip_bytes, packets=orig_pkts)
    out["destination"].update(bytes=resp_ip_bytes, packets=resp_pkts)
    out["network"].update(
        protocol=service.split(",")[0].lower() or None if isinstance(service, str) else None,
        bytes=orig_ip_bytes + resp_ip_bytes
        if orig_ip_bytes is not None and resp_ip_bytes is not None
        else None,
        packets=orig_pkts + resp_pkts if orig_pkts is not None and resp_pkts is not None else None,
        direction=_direction(local_orig, local_resp),
    )
    out["zeek"]["conn"] = {
        "duration": duration,
        "orig_bytes": _int(record.get("orig_bytes")),
        "resp_bytes": _int(record.get("resp_bytes")),
        "state": record.get("conn_state"),
        "local_orig": local_orig,
        "local_resp": local_resp,
        "missed_bytes": _int(record.get("missed_bytes")),
        "history": record.get("history"),
        "service": ",".join(services) if isinstance(services, list) else services,
        "tunnel_parents": _list(record.get("tunnel_parents")),
        "vlan": _int(record.get("vlan")),
    }


_DNS_FLAGS = ("AA", "TC", "RD", "RA")


def _dns(record: dict[str, Any], out: dict[str, Any]) -> None:
    query = record.get("query")
    rcode_name = record.get("rcode_name")
    answers = [str(a) for a in _list(record.get("answers"))]
    flags = [f for f in _DNS_FLAGS if _bool(record.get(f))]
    resolved = [ip for ip in map(_ip, answers) if ip]
    registered, subdomain, tld = split_domain(query) if isinstance(query, str) else (None,) * 3
    trans_id = record.get("trans_id")
    out["network"]["protocol"] = "dns"
    out["event"]["outcome"] = (
        None if rcode_name is None else "success" if rcode_name == "NOERROR" else "failure"
    )
    out["dns"] = {
        "id": str(trans_id) if trans_id is not None else None,
        "type": "answer" if rcode_name is not None or answers else "query",
        "question": {
            "name": query,
            "type": record.get("qtype_name"),
            "class": record.get("qclass_name"),
            "registered_domain": registered,
            "subdomain": subdomain,
            "top_level_domain": tld,
        },
        "response_code": rcode_name,
        "header_flags": flags,
        "resolved_ip": resolved,
    }
    out["zeek"]["dns"] = {
        "rtt": _float(record.get("rtt")),
        "qclass": _int(record.get("qclass")),
        "qtype": _int(record.get("qtype")),
        "rcode": _int(record.get("rcode")),
        "z": _int(record.get("Z")),
        "answers": answers,
        "ttls": [t for t in map(_float, _list(record.get("TTLs"))) if t is not None],
        "rejected": _bool(record.get("rejected")),
    }
    if query:
        out["related"]["hosts"].append(query)
    out["related"]["ip"].extend(resolved)


def _http(record: dict[str, Any], out: dict[str, Any]) -> None:
    host = record.get("host")
    uri = record.get("uri")
    status = _int(record.get("status_code"))
    username = record.get("username")
    resp_mime = _list(record.get("resp_mime_types"))
    orig_mime = _list(record.get("orig_mime_types"))
    domain = host.rsplit(":", 1)[0] if isinstance(host, str) and "]" not in host else host
    path, query = None, None
    full = None
    if isinstance(uri, str):
        if uri.startswith(("http://", "https://")):
            full = uri  # proxy request: absolute form
            path_part = "/" + uri.split("/", 3)[3] if uri.count("/") >= 3 else "/"
        else:
            path_part = uri
            full = f"http://{host}{uri}" if host else None
        path, _, query = path_part.partition("?")
    out["event"]["category"] = ["network", "web"]
    out["network"]["transport"] = out["network"]["transport"] or "tcp"  # http.log has no proto
    out["event"]["outcome"] = None if status is None else "success" if status < 400 else "failure"
    out["network"]["protocol"] = "http"
    out["destination"]["domain"] = domain if domain and not _ip(domain) else None
    out["url"] = {
        "original": uri,
        "full": full,
        "domain": domain,
        "path": path,
        "query": query or None,
        "username": username,
    }
    out["http"] = {
        "version": record.get("version"),
        "request": {
            "method": record.get("method"),
            "referrer": record.get("referrer"),
            "body": {"bytes": _int(record.get("request_body_len"))},
            "mime_type": orig_mime[0] if orig_mime else None,
        },
        "response": {
            "status_code": status,
            "body": {"bytes": _int(record.get("response_body_len"))},
            "mime_type": resp_mime[0] if resp_mime else None,
        },
    }
    out["user_agent"] = {"original": record.get("user_agent")}
    out["zeek"]["http"] = {
        "trans_depth": _int(record.get("trans_depth")),
        "status_msg": record.get("status_msg"),
        "info_code": _int(record.get("info_code")),
        "info_msg": record.get("info_msg"),
        "origin": record.get("origin"),
        "tags": _list(record.get("tags")),
        "proxied": _list(record.get("proxied")),
        "orig_fuids": _list(record.get("orig_fuids")),
        "orig_filenames": _list(record.get("orig_filenames")),
        "orig_mime_types": orig_mime,
        "resp_fuids": _list(record.get("resp_fuids")),
        "resp_filenames": _list(record.get("resp_filenames")),
        "resp_mime_types": resp_mime,
    }
    if domain and not _ip(domain):
        out["related"]["hosts"].append(domain)
    if username:
        out["related"]["user"].append(username)


def _ssl(record: dict[str, Any], out: dict[str, Any]) -> None:
    version = record.get("version")
    protocol, number = _TLS_VERSIONS.get(version, (None, None)) if version else (None, None)
    server_name = record.get("server_name")
    established = _bool(record.get("established"))
    chain = _list(record.get("cert_chain_fps"))
    client_chain = _list(record.get("client_cert_chain_fps"))
    out["event"]["outcome"] = (
        None if established is None else "success" if established else "failure"
    )
    out["network"]["protocol"] = "tls"
    out["network"]["transport"] = out["network"]["transport"] or "tcp"  # ssl.log has no proto
    out["destination"]["domain"] = server_name
    out["tls"] = {
        "version": number,
        "version_protocol": protocol,
        "cipher": record.get("cipher"),
        "curve": record.get("curve"),
        "resumed": _bool(record.get("resumed")),
        "established": established,
        "next_protocol": record.get("next_protocol"),
        "client": {
            "server_name": server_name,
            "ja3": record.get("ja3"),
            "hash": {"sha256": client_chain[0] if client_chain else None},
            "subject": record.get("client_subject"),
            "issuer": record.get("client_issuer"),
        },
        "server": {
            "ja3s": record.get("ja3s"),
            "hash": {"sha256": chain[0] if chain else None},
            "subject": record.get("subject"),
            "issuer": record.get("issuer"),
        },
    }
    out["zeek"]["ssl"] = {
        "version": version,
        "last_alert": record.get("last_alert"),
        "ssl_history": record.get("ssl_history"),
        "cert_chain_fps": chain,
        "client_cert_chain_fps": client_chain,
        "sni_matches_cert": _bool(record.get("sni_matches_cert")),
        "validation_status": record.get("validation_status"),
    }
    if server_name:
        out["related"]["hosts"].append(server_name)
    out["related"]["hash"].extend(chain[:1] + client_chain[:1])


_LOGS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "conn": _conn,
    "dns": _dns,
    "http": _http,
    "ssl": _ssl,
}


def _guess_path(record: dict[str, Any]) -> str | None:
    """A JSON log written without `_path`: tell the log from its fields."""
    if "query" in record or "qtype_name" in record or "trans_id" in record:
        return "dns"
    if "method" in record or "status_code" in record or "uri" in record:
        return "http"
    if "ssl_history" in record or "cipher" in record or "server_name" in record:
        return "ssl"
    if "conn_state" in record or "orig_ip_bytes" in record or "history" in record:
        return "conn"
    return None


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a zeek log record is a mapping, got {type(record).__name__}")
    path = record.get("_path") or _guess_path(record)
    handler = _LOGS.get(path) if isinstance(path, str) else None
    if handler is None:
        raise ValueError(
            f"zeek log {path!r} is not collected (known: {', '.join(_LOGS)})"
            if path
            else "cannot tell which zeek log this record is from (no _path, unknown fields)"
        )
    if "ts" not in record:
        raise ValueError(f"zeek {path} record has no ts")
    out = _base(record, str(path))
    handler(record, out)
    return out
