"""Suricata EVE JSON (alert, dns, http, flow) -> ECS, one table each (suricata_alert, ...).

Timestamps look like `2026-11-20T04:31:02.123456+0000`. Alerts are `event.kind: alert` with
`event.severity` as Suricata gives it (1 high, 2 medium, 3 low). DNS records are read in both
the EVE v2 layout (Suricata 6-7: `rrname`/`rrtype` at the top of `dns`) and the v3 layout
(Suricata 8: `queries` list). Other event types (stats, tls, fileinfo, anomaly, ...) are not
collected and are refused with that reason.

The registered domain of DNS names is found with a short list of two-label public suffixes,
not the full Public Suffix List: good for grouping by domain, not authoritative.

`transform_columns` makes the same rows for a batch of records with Arrow compute (the
transformer uses it; transform() is the definition and decides what it leaves).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


# _http_version, _app_layer, _dns_kind, _answers: shared with transform_columns
def _http_version(protocol: Any) -> str | None:
    return (protocol.partition("/")[2] or None) if isinstance(protocol, str) else None


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
        "version": _http_version(http.get("protocol")),
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
    out["suricata"]["eve"]["app_layer"] = json_text_nonempty(_app_layer(record), sort_keys=True)
    out["suricata"]["eve"]["payload_printable"] = record.get("payload_printable")


_APP_LAYER = ("http", "dns", "tls", "smb", "ssh", "files")


def _app_layer(record: dict[str, Any]) -> dict[str, Any]:
    """The app-layer objects of an alert, as they are (a key present with null included)."""
    return {k: record[k] for k in _APP_LAYER if k in record}


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


def _dns_kind(kind: Any) -> Any:
    return "answer" if kind in ("answer", "response") else "query" if kind == "request" else kind


def _answers(dns: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """The answers (objects only), the grouped answers and the addresses they resolve to."""
    answers = [a for a in dns.get("answers") or [] if isinstance(a, dict)]
    resolved = [ip for ip in (_ip(a.get("rdata")) for a in answers) if ip]
    grouped = as_dict(dns.get("grouped"))
    if not answers and grouped:  # answers logged in grouped form only
        resolved = [ip for t in ("A", "AAAA") for ip in map(_ip, grouped.get(t) or []) if ip]
    return answers, grouped, resolved


def _dns(record: dict[str, Any], out: dict[str, Any]) -> None:
    dns = as_dict(record.get("dns"))
    if not dns:
        raise ValueError("EVE dns record has no dns object")
    names = _dns_names(dns)
    name, qtype = names[0] if names else (None, None)
    registered, subdomain, tld = split_domain(name) if name else (None, None, None)
    kind = _dns_kind(dns.get("type"))
    answers, grouped, resolved = _answers(dns)
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


# -- the same rows for a batch of records ------------------------------------------------------
_TEXTS = pa.list_(pa.string())
_LONGS = pa.list_(pa.int64())
# EVE writes times as ISO 8601 with "+0000": rewritten to "Z", Arrow's cast reads them as
# fromisoformat does (col.timestamps); any other text goes through _time per value.
_EVE_UTC = r"^[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\+00:?00$"
_EXACT_FLOAT = 2**53  # below this many microseconds a duration is computed exactly as in _flow
_CATEGORIES = pa.array(
    [["network"], ["network", "intrusion_detection"], ["network", "web"]], _TEXTS
)  # base, alert, http
_TYPES = pa.array(
    [["protocol"], ["allowed"], ["denied"], ["connection", "end"]], _TEXTS
)  # base, alert allowed, alert blocked, flow
# dns.header_flags for each combination of the six flags (bit i: _DNS_FLAGS[i] is true)
_FLAG_LISTS = pa.array(
    [[ecs for i, (_, ecs) in enumerate(_DNS_FLAGS) if code >> i & 1] for code in range(64)],
    _TEXTS,
)


def _times(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """_time per value (null where it gives None), and where it raises."""
    utc = pc.fill_null(pc.match_substring_regex(values, _EVE_UTC), False)
    text = pc.if_else(utc, pc.replace_substring_regex(values, r"\+00:?00$", "Z"), values)
    ts = col.timestamps(text, reader=_time)
    return ts, pc.and_(col.truthy(values), pc.is_null(ts))  # _time gives None only for ""


_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def _ips(values: pa.Array) -> pa.Array:
    """_ip per value: dotted-quad text (no leading zeros) is already as ipaddress writes it;
    the rest is read per value."""
    plain = pc.fill_null(pc.match_substring_regex(values, _IPV4), False)
    return pc.if_else(
        plain, values, col.per_value(_ip, _when(pc.invert(plain), values), pa.string())
    )


def _add(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array]:
    """_sum per record, and where it is out of int64 (transform's row does not fit then)."""
    total = pc.add(a, b)  # wraps around; the sign rule finds where it did
    over = pc.less(pc.bit_wise_and(pc.bit_wise_xor(a, total), pc.bit_wise_xor(b, total)), 0)
    return total, pc.fill_null(over, False)


def _duration(start: pa.Array, end: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """event.duration as _flow computes it (float seconds * 1e9, rounded), and where that is
    not done exactly here."""
    us = pc.subtract(end.cast(pa.int64()), start.cast(pa.int64()))
    missing = us.is_null().to_numpy(zero_copy_only=False)
    diff = us.fill_null(0).to_numpy()
    inexact = np.abs(diff) >= _EXACT_FLOAT
    # int / 10**6 of such ints is float / 1e6 (CPython's exact path), round() is half-even
    ns = np.rint(diff.astype(np.float64) / 1e6 * 1e9)
    ns[inexact] = 0
    return pa.array(ns.astype(np.int64), pa.int64(), mask=missing | inexact), inexact & ~missing


def _any_valid(batch: col.Batch, paths: tuple[str, ...]) -> pa.Array:
    found = pc.is_valid(batch[paths[0]])
    for path in paths[1:]:
        found = pc.or_(found, pc.is_valid(batch[path]))
    return found


def _flags(values: list[Any]) -> np.ndarray:
    """Per record: the value is a non-empty object (what `if not as_dict(...)` asks)."""
    return np.fromiter((type(v) is dict and bool(v) for v in values), bool, len(values))


_READS: dict[str, tuple[frozenset[type], pa.DataType]] = {
    "string": (frozenset((str, type(None))), pa.string()),
    "long": (frozenset((int, type(None))), pa.int64()),  # and within int64
    "boolean": (frozenset((bool, type(None))), pa.bool_()),
}


def _reads(value: Any, allowed: frozenset[type]) -> bool:
    return type(value) in allowed and (type(value) is not int or -(2**63) <= value < 2**63)


def _pick(values: list[Any], fields: dict[str, str], rows: np.ndarray) -> dict[str, pa.Array]:
    """The fields of the objects in `values` (null where there is none), read as a declared raw
    field is; a record with a value of another type is marked in `rows` (transform() does it).
    Only the objects are visited: most records have none of a given kind."""
    at = [i for i, v in enumerate(values) if type(v) is dict]
    objects = [values[i] for i in at]
    index = np.full(len(values), -1, dtype=np.int64)
    index[at] = np.arange(len(at))
    where = pa.array(index, mask=index < 0)  # record -> its object, null for none
    out = {}
    for key, kind in fields.items():
        allowed, type_ = _READS[kind]
        picked = [o.get(key) for o in objects]
        found = None
        if set(map(type, picked)) <= allowed:
            with suppress(OverflowError, pa.ArrowInvalid):  # an int out of int64
                found = pa.array(picked, type_)
        if found is None:
            for j, value in enumerate(picked):
                if not _reads(value, allowed):
                    rows[at[j]] = True
                    picked[j] = None
            found = pa.array(picked, type_)
        out[key] = found.take(where)
    return out


def _np(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _when(condition: Any, values: pa.Array) -> pa.Array:
    """`values if condition else None` per record."""
    return pc.if_else(condition, values, pa.scalar(None, values.type))


_ALERT_FIELDS = ("action", "gid", "signature_id", "rev", "signature", "category", "severity")
_FLOW_FIELDS = (
    "pkts_toserver",
    "pkts_toclient",
    "bytes_toserver",
    "bytes_toclient",
    "start",
    "end",
    "age",
    "state",
    "reason",
    "alerted",
)
_HTTP_FIELDS = {
    "hostname": "string",
    "url": "string",
    "status": "long",
    "http_port": "long",
    "protocol": "string",
    "http_method": "string",
    "http_refer": "string",
    "length": "long",
    "http_content_type": "string",
    "http_user_agent": "string",
    "redirect": "string",
    "xff": "string",
}
_DNS_FIELDS = {
    "type": "string",
    "id": "long",
    "opcode": "long",
    "rcode": "string",
    "version": "long",
    "flags": "string",
    "tx_id": "long",
    **{key: "boolean" for key, _ in _DNS_FLAGS},
}


@col.columnar(
    raw={
        "timestamp": "string",
        "event_type": "string",
        "flow_id": "long",
        "in_iface": "string",
        "src_ip": "string",
        "src_port": "long",
        "dest_ip": "string",
        "dest_port": "long",
        "proto": "string",
        "app_proto": "string",
        "community_id": "string",
        "host": "string",
        "tx_id": "long",
        "pkt_src": "string",
        "direction": "string",
        "vlan": "list<long>",
        "payload_printable": "string",
        "flow.pkts_toserver": "long",
        "flow.pkts_toclient": "long",
        "flow.bytes_toserver": "long",
        "flow.bytes_toclient": "long",
        "flow.start": "string",
        "flow.end": "string",
        "flow.age": "long",
        "flow.state": "string",
        "flow.reason": "string",
        "flow.alerted": "boolean",
        "tcp.tcp_flags": "string",
        "tcp.tcp_flags_ts": "string",
        "tcp.tcp_flags_tc": "string",
        "tcp.state": "string",
        **{
            f"alert.{k}": "long" if k in ("gid", "signature_id", "rev", "severity") else "string"
            for k in _ALERT_FIELDS
        },
        "alert.metadata": "json",
        # read whole: alerts keep them as app_layer, `if not http` sees every key (their
        # fields are picked out by _pick)
        "http": "json",
        "dns": "json",
        "tls": "json",
        "smb": "json",
        "ssh": "json",
        "files": "json",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute; the
    JSON-valued parts (DNS names and answers, app_layer, headers) per record in Python."""
    n = len(batch)
    rows = np.zeros(n, dtype=bool)  # records transform() must do itself
    event_type = batch["event_type"]
    kind = pc.fill_null(event_type, "")
    is_alert, is_dns = pc.equal(kind, "alert"), pc.equal(kind, "dns")
    is_http, is_flow = pc.equal(kind, "http"), pc.equal(kind, "flow")
    alert_np, dns_np, http_np, flow_np = _np(is_alert), _np(is_dns), _np(is_http), _np(is_flow)
    rows |= ~(alert_np | dns_np | http_np | flow_np)  # not collected: transform() says so

    # -- common
    ts, _ = _times(batch["timestamp"])  # null (no timestamp, or not ISO): transform() decides
    src, dst = _ips(batch["src_ip"]), _ips(batch["dest_ip"])
    server_bytes, client_bytes = batch["flow.bytes_toserver"], batch["flow.bytes_toclient"]
    server_pkts, client_pkts = batch["flow.pkts_toserver"], batch["flow.pkts_toclient"]
    total_bytes, over_bytes = _add(server_bytes, client_bytes)
    total_pkts, over_pkts = _add(server_pkts, client_pkts)
    rows |= _np(pc.or_(over_bytes, over_pkts))
    app_proto = batch["app_proto"]
    protocol = pc.if_else(
        is_dns,
        "dns",
        pc.if_else(is_http, "http", _when(pc.not_equal(app_proto, "failed"), app_proto)),
    )
    direction = batch["direction"]

    # -- alert (an alert object with nothing declared in it may still be non-empty)
    rows |= alert_np & ~_np(
        pc.or_(
            _any_valid(batch, tuple(f"alert.{k}" for k in _ALERT_FIELDS)),
            pa.array([v is not None for v in batch.values("alert.metadata")], pa.bool_()),
        )
    )
    action = batch["alert.action"]
    blocked = pc.fill_null(pc.equal(action, "blocked"), False)
    alert_at = np.flatnonzero(alert_np & ~rows)
    metadata: list[str | None] = [None] * n
    app_layer: list[str | None] = [None] * n
    records = batch.records
    meta_values = batch.values("alert.metadata")
    for i in alert_at.tolist():
        try:
            metadata[i] = json_text_nonempty(meta_values[i], sort_keys=True)
            app_layer[i] = json_text_nonempty(_app_layer(records[i]), sort_keys=True)
        except Exception:  # transform() says why
            rows[i] = True

    # -- http (http events, and alerts with an http object)
    http_values = batch.values("http")
    http = _pick(http_values, _HTTP_FIELDS, rows)
    http_full = _flags(http_values)
    rows |= http_np & ~http_full
    http_on = pa.array(http_np | (alert_np & http_full))
    host, uri = http["hostname"], http["url"]
    port, status = http["http_port"], http["status"]
    absolute = pc.or_(pc.starts_with(uri, "http://"), pc.starts_with(uri, "https://"))
    full = pc.if_else(
        absolute,
        uri,
        pc.if_else(
            col.truthy(port),
            pc.binary_join_element_wise("http://", host, ":", port.cast(pa.string()), uri, ""),
            pc.binary_join_element_wise("http://", host, uri, ""),
        ),
    )
    full = _when(pc.and_(col.truthy(host), pc.is_valid(uri)), full)
    query = pc.struct_field(pc.extract_regex(uri, r"(?s)^[^?]*\?(?P<q>.*)$"), [0])
    named = pc.and_(pc.and_(http_on, col.truthy(host)), pc.is_null(_ips(host)))
    to_client = pc.fill_null(pc.equal(direction, "to_client"), False)
    outcome_http = pc.if_else(pc.less(status, 400), "success", "failure")
    request_headers: list[str | None] = [None] * n
    response_headers: list[str | None] = [None] * n
    for i in np.flatnonzero(http_np & ~rows).tolist():
        try:  # http_values[i] is an object here (else the record is in `rows`)
            found = http_values[i]
            request_headers[i] = json_text_nonempty(found.get("request_headers"), sort_keys=True)
            response_headers[i] = json_text_nonempty(found.get("response_headers"), sort_keys=True)
        except Exception:  # transform() says why
            rows[i] = True

    # -- dns (dns events, and the question names of alerts)
    dns_values = batch.values("dns")
    dns = _pick(dns_values, _DNS_FIELDS, rows)
    dns_full = _flags(dns_values)
    rows |= dns_np & ~dns_full
    empty: list[str] = []
    names: list[list[str]] = [empty] * n
    first_name: list[str | None] = [None] * n
    first_type: list[str | None] = [None] * n
    resolved: list[list[str]] = [empty] * n
    answers: list[str | None] = [None] * n
    grouped: list[str | None] = [None] * n
    queries: list[str | None] = [None] * n
    for i in np.flatnonzero(dns_full & (alert_np | dns_np) & ~rows).tolist():
        found = _dns_names(dns_values[i])  # an object here
        if found:
            names[i] = [name for name, _ in found]
            first_name[i], qtype = found[0]
            if qtype is not None and type(qtype) is not str:
                rows[i] |= bool(dns_np[i])  # dns.question.type that is no text: not in the table
                continue
            first_type[i] = qtype
        if not dns_np[i]:
            continue
        try:
            listed, groups, resolved[i] = _answers(dns_values[i])
            answers[i] = json_text_nonempty(listed, sort_keys=True)
            grouped[i] = json_text_nonempty(groups, sort_keys=True)
            queries[i] = json_text_nonempty(dns_values[i].get("queries"), sort_keys=True)
        except Exception:  # e.g. answers that are a number, an rdata that is a list
            rows[i] = True
    question = pa.array(first_name, pa.string())
    names_listed = pa.array(names, _TEXTS)
    has_names = pc.greater(pc.list_value_length(names_listed), 0)
    dns_kind = col.per_value(_dns_kind, dns["type"], pa.string())
    rcode = dns["rcode"]
    outcome_dns = _when(
        pc.fill_null(pc.equal(dns_kind, "answer"), False),
        pc.if_else(pc.equal(rcode, "NOERROR"), "success", "failure"),
    )
    code = pa.array(np.zeros(n, dtype=np.int64))
    for bit, (key, _) in enumerate(_DNS_FLAGS):
        on = pc.fill_null(pc.equal(dns[key], True), False)
        code = pc.add(code, pc.multiply(on.cast(pa.int64()), 1 << bit))
    domain = col.per_value(
        lambda v: split_domain(v) if v else (None, None, None),
        question,
        pa.struct([("r", pa.string()), ("s", pa.string()), ("t", pa.string())]),
    )

    # -- tls (alerts)
    sni = _pick(batch.values("tls"), {"sni": "string"}, rows)["sni"]
    tls_on = pc.and_(is_alert, col.truthy(sni))

    # -- flow
    rows |= flow_np & ~_np(_any_valid(batch, tuple(f"flow.{k}" for k in _FLOW_FIELDS)))
    start, start_raises = _times(batch["flow.start"])
    end, end_raises = _times(batch["flow.end"])
    rows |= flow_np & _np(pc.or_(start_raises, end_raises))
    duration, inexact = _duration(start, end)
    rows |= flow_np & inexact

    category = _CATEGORIES.take(pc.if_else(is_alert, 1, pc.if_else(is_http, 2, 0)).cast(pa.int64()))
    types = _TYPES.take(
        pc.if_else(is_alert, pc.if_else(blocked, 2, 1), pc.if_else(is_flow, 3, 0)).cast(pa.int64())
    )
    sid, rev = batch["alert.signature_id"], batch["alert.rev"]
    eve = "suricata.eve."
    return {
        col.ROW_PATH: pa.array(rows),
        "_table": event_type,
        "ts": ts,
        "event.kind": pc.if_else(is_alert, "alert", "event"),
        "event.category": category,
        "event.type": types,
        "event.action": action,
        "event.severity": batch["alert.severity"],
        "event.outcome": pc.if_else(is_dns, outcome_dns, outcome_http),
        "event.start": start,
        "event.end": end,
        "event.duration": duration,
        "observer.hostname": batch["host"],
        "observer.type": "ids",
        "observer.vendor": "OISF",
        "observer.product": "Suricata",
        "observer.ingress.interface.name": batch["in_iface"],
        "source.ip": src,
        "source.port": batch["src_port"],
        "source.bytes": server_bytes,
        "source.packets": server_pkts,
        "source.domain": _when(pc.and_(named, to_client), host),
        "destination.ip": dst,
        "destination.port": batch["dest_port"],
        "destination.bytes": client_bytes,
        "destination.packets": client_pkts,
        "destination.domain": _when(pc.and_(named, pc.invert(to_client)), host),
        "network.transport": col.per_value(str.lower, batch["proto"], pa.string()),
        "network.protocol": protocol,
        "network.community_id": batch["community_id"],
        "network.bytes": total_bytes,
        "network.packets": total_pkts,
        "rule.id": sid.cast(pa.string()),
        "rule.name": batch["alert.signature"],
        "rule.category": batch["alert.category"],
        "rule.version": rev.cast(pa.string()),
        "url": http_on,
        "url.original": uri,
        "url.full": full,
        "url.domain": host,
        "url.path": pc.replace_substring_regex(uri, r"(?s)\?.*", "", max_replacements=1),
        "url.query": _when(col.truthy(query), query),
        "url.port": port,
        "http": http_on,
        "http.version": col.per_value(_http_version, http["protocol"], pa.string()),
        "http.request.method": http["http_method"],
        "http.request.referrer": http["http_refer"],
        "http.response.status_code": status,
        "http.response.body.bytes": http["length"],
        "http.response.mime_type": http["http_content_type"],
        "user_agent": http_on,
        "user_agent.original": http["http_user_agent"],
        "dns": pc.or_(is_dns, has_names),
        "dns.id": dns["id"].cast(pa.string()),
        "dns.type": dns_kind,
        "dns.op_code": dns["opcode"].cast(pa.string()),
        "dns.question.name": question,
        "dns.question.type": pa.array(first_type, pa.string()),
        "dns.question.registered_domain": pc.struct_field(domain, [0]),
        "dns.question.subdomain": pc.struct_field(domain, [1]),
        "dns.question.top_level_domain": pc.struct_field(domain, [2]),
        "dns.response_code": rcode,
        "dns.header_flags": _FLAG_LISTS.take(code),
        "dns.resolved_ip": pa.array(resolved, _TEXTS),
        "tls": tls_on,
        "tls.client.server_name": sni,
        eve + "event_type": event_type,
        eve + "flow_id": batch["flow_id"].cast(pa.string()),
        eve + "tx_id": batch["tx_id"],
        eve + "pkt_src": batch["pkt_src"],
        eve + "direction": direction,
        eve + "vlan": pc.fill_null(batch["vlan"], pa.scalar([], _LONGS)),
        eve + "alert.gid": batch["alert.gid"],
        eve + "alert.signature_id": sid,
        eve + "alert.rev": rev,
        eve + "alert.severity": batch["alert.severity"],
        eve + "alert.action": action,
        eve + "alert.metadata": pa.array(metadata, pa.string()),
        eve + "app_layer": pa.array(app_layer, pa.string()),
        eve + "payload_printable": batch["payload_printable"],
        eve + "dns.version": dns["version"],
        eve + "dns.flags": dns["flags"],
        eve + "dns.tx_id": dns["tx_id"],
        eve + "dns.answers": pa.array(answers, pa.string()),
        eve + "dns.grouped": pa.array(grouped, pa.string()),
        eve + "dns.queries": pa.array(queries, pa.string()),
        eve + "http.protocol": http["protocol"],
        eve + "http.redirect": http["redirect"],
        eve + "http.xff": http["xff"],
        eve + "http.request_headers": pa.array(request_headers, pa.string()),
        eve + "http.response_headers": pa.array(response_headers, pa.string()),
        eve + "flow.state": batch["flow.state"],
        eve + "flow.reason": batch["flow.reason"],
        eve + "flow.alerted": batch["flow.alerted"],
        eve + "flow.age": batch["flow.age"],
        eve + "tcp.flags": batch["tcp.tcp_flags"],
        eve + "tcp.flags_ts": batch["tcp.tcp_flags_ts"],
        eve + "tcp.flags_tc": batch["tcp.tcp_flags_tc"],
        eve + "tcp.state": batch["tcp.state"],
        # related.ip is source.ip, destination.ip and dns.resolved_ip, as the table's paths give
        "related.hosts": col.unique_values(
            _when(named, host),
            names_listed,
            _when(tls_on, sni),
        ),
    }
