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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
from tarn.logsources.helpers import split_domain, strict_ip_or_none

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


# small readers of one value, shared with the batch version below
def _service_protocol(service: str) -> str | None:
    return service.split(",")[0].lower() or None


def _host_domain(host: Any) -> Any:
    return host.rsplit(":", 1)[0] if isinstance(host, str) and "]" not in host else host


def _host_name(domain: Any) -> Any:
    """The domain for destination.domain and related.hosts: None for an address."""
    return domain if domain and not _ip(domain) else None


def _tls_version(version: Any) -> tuple[str | None, str | None]:
    return _TLS_VERSIONS.get(version, (None, None)) if version else (None, None)


def _answers_of(value: Any) -> list[str]:
    return [str(a) for a in _list(value)]


def _ttls_of(value: Any) -> list[float]:
    return [t for t in map(_float, _list(value)) if t is not None]


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
        protocol=_service_protocol(service) if isinstance(service, str) else None,
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
    answers = _answers_of(record.get("answers"))
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
        "ttls": _ttls_of(record.get("TTLs")),
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
    domain = _host_domain(host)
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
    out["destination"]["domain"] = _host_name(domain)
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
    if _host_name(domain):
        out["related"]["hosts"].append(domain)
    if username:
        out["related"]["user"].append(username)


def _ssl(record: dict[str, Any], out: dict[str, Any]) -> None:
    version = record.get("version")
    protocol, number = _tls_version(version)
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


# -- the same rows, a batch at a time (see tarn.logsources.columnar) ------------------------------
# Records are TSV dicts (text, lists of text, None) or JSON values of any type, and their keys
# have dots in them ("id.orig_h"), which raw= cannot name: every field is read from the rest of
# the record ("*"). Each column is built by the fast path that fits what its values are (text,
# or native numbers/bools/lists), and by the row helper itself for anything else.
_STR = pa.string()
_STRS = pa.list_(pa.string())
_DOUBLES = pa.list_(pa.float64())
_NONE = type(None)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)
_PLAIN_INT = r"^[0-9]{1,18}$"
_PLAIN_FLOAT = r"^[0-9]{1,15}(\.[0-9]{1,9})?$"
# epoch seconds as TSV writes them; at most 11 digits: always a year datetime can hold
_EPOCH_TEXT = r"^(?P<s>[0-9]{1,11})(?:\.(?P<f>[0-9]+))?$"
_EPOCH_MAX = 2.0**33  # JSON epoch seconds read with Arrow below this (year 2242)
_BIG = 2**62  # counts added together: from this on the sum may not fit a long
_TABLES = tuple(_LOGS)  # a record's table, as an index into this
_NETWORK = pa.scalar(["network"], _STRS)
_PROTOCOL = pa.scalar(["protocol"], _STRS)
_DIRECTIONS = pa.array(["external", "inbound", "outbound", "internal"])
_FLAG_LISTS = pa.array(
    [[f for j, f in enumerate(_DNS_FLAGS) if code >> (3 - j) & 1] for code in range(16)], _STRS
)
_TS = pa.timestamp("us", tz="UTC")
_DOMAIN_PARTS = pa.struct([("registered", _STR), ("subdomain", _STR), ("tld", _STR)])


def _ts_or_none(value: Any) -> datetime | None:
    try:
        return _ts(value)
    except Exception:  # transform() raises: the record goes back to it, which says why
        return None


def _as_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError("not text")  # the row's text column would not take it


def _text_or_none(value: Any) -> str | None:
    return value if type(value) is str else None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _int_fits(value: Any) -> int | None:
    number = _int(value)
    if number is not None and not -(2**63) <= number < 2**63:
        raise OverflowError("does not fit a long")
    return number


def _each(fn: Callable[[Any], Any], values: list[Any], type_: pa.DataType) -> tuple[Any, Any]:
    """`fn` per value as transform() calls it: the results, and where it raises or gives what
    the column cannot hold (None: nowhere)."""
    out: list[Any] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        try:
            out.append(fn(value))
        except Exception:
            out.append(None)
            bad[i] = True
    try:
        return pa.array(out, type_), (bad if bad.any() else None)
    except _ARROW_ERRORS:
        pass
    for i, result in enumerate(out):
        if result is not None:
            try:
                pa.array([result], type_)
            except _ARROW_ERRORS:
                out[i] = None
                bad[i] = True
    return pa.array(out, type_), bad


def _blend(
    text: pa.Array, common: pa.Array, fast: Any, fn: Callable[[Any], Any], type_: pa.DataType
) -> tuple[Any, Any]:
    """`fast` (an array) where `common` says so, fn per distinct value at the other values."""
    other = pc.and_(pc.invert(common), pc.is_valid(text))
    if not pc.any(other).as_py():
        return fast, None
    slow, failed = col.per_value_checked(fn, text.filter(other), type_)
    out = pc.replace_with_mask(fast, other, slow)
    if not pc.any(failed).as_py():
        return out, None
    bad = np.zeros(len(text), dtype=bool)
    bad[np.flatnonzero(other.to_numpy(zero_copy_only=False))] = failed.to_numpy(
        zero_copy_only=False
    )
    return out, bad


def _text_array(values: list[Any]) -> Any:
    """The values as a string array when all are text (or None) that Arrow takes; else None."""
    try:
        return pa.array(values, _STR)  # takes str, None (and bytes, which records never hold)
    except _ARROW_ERRORS:  # not text, or text with lone surrogates
        return None


def _texts(values: list[Any]) -> tuple[Any, Any]:
    """A text field passed on as it is."""
    text = _text_array(values)
    return (text, None) if text is not None else _each(_as_text, values, _STR)


def _strs(values: list[Any]) -> tuple[Any, Any]:
    """A field transform() reads only where it is text (`isinstance(value, str)`)."""
    text = _text_array(values)
    return (text, None) if text is not None else _each(_text_or_none, values, _STR)


def _ints(values: list[Any]) -> tuple[Any, Any]:
    """_int per value."""
    text = _text_array(values)
    if text is not None:
        plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_INT), False)
        fast = pc.if_else(plain, text, None).cast(pa.int64())
        return _blend(text, plain, fast, _int_fits, pa.int64())
    if set(map(type, values)) <= {int, _NONE}:
        try:
            return pa.array(values, pa.int64()), None
        except _ARROW_ERRORS:
            pass
    return _each(_int_fits, values, pa.int64())


def _floats(values: list[Any]) -> tuple[Any, Any]:
    """_float per value."""
    text = _text_array(values)
    if text is not None:
        plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_FLOAT), False)
        fast = pc.if_else(plain, text, None).cast(pa.float64())
        return _blend(text, plain, fast, _float, pa.float64())
    if set(map(type, values)) <= {float, _NONE}:
        return pa.array(values, pa.float64()), None
    return _each(_float, values, pa.float64())


def _bools(values: list[Any]) -> tuple[Any, Any]:
    """_bool per value."""
    text = _text_array(values)
    if text is not None:
        unset = pa.scalar(None, pa.bool_())
        no = pc.if_else(pc.equal(text, "F"), False, unset)
        return pc.if_else(pc.equal(text, "T"), True, no), None
    if set(map(type, values)) <= {bool, _NONE}:
        return pa.array(values, pa.bool_()), None
    return _each(_bool, values, pa.bool_())


def _ips(values: list[Any]) -> tuple[Any, Any]:
    """_ip per value (which raises for a value it cannot hash)."""
    text = _text_array(values)
    if text is not None:
        return col.per_value(_ip, text, _STR), None
    return _each(_ip, values, _STR)


def _lists(values: list[Any]) -> tuple[Any, Any]:
    """_list per value, for a list<keyword> column."""
    if set(map(type, values)) <= {list, _NONE}:
        try:
            return pa.array([[] if v is None else v for v in values], _STRS), None
        except _ARROW_ERRORS:
            pass
    return _each(_list, values, _STRS)


def _answers(values: list[Any]) -> tuple[Any, Any]:
    """dns answers: str() of each, so a null element would be "None"."""
    if set(map(type, values)) <= {list, _NONE}:
        try:
            lists = pa.array([[] if v is None else v for v in values], _STRS)
        except _ARROW_ERRORS:
            pass
        else:
            if lists.values.null_count == 0:
                return lists, None
    return _each(_answers_of, values, _STRS)


def _ttls(values: list[Any]) -> tuple[Any, Any]:
    """dns TTLs: _float of each, the ones it reads."""
    if set(map(type, values)) <= {list, _NONE}:
        lists = [[] if v is None else v for v in values]
        try:
            texts = pa.array(lists, _STRS)
        except _ARROW_ERRORS:
            pass
        else:
            floats, bad = _floats(texts.values.to_pylist())
            parents = pc.list_parent_indices(texts).to_numpy()
            keep = floats.is_valid().to_numpy(zero_copy_only=False)
            counts = np.bincount(parents[keep], minlength=len(values))
            offsets = np.zeros(len(values) + 1, dtype=np.int32)
            np.cumsum(counts, out=offsets[1:])
            out = pa.ListArray.from_arrays(pa.array(offsets), floats.filter(pa.array(keep)))
            if bad is None:
                return out, None
            rows = np.zeros(len(values), dtype=bool)
            rows[parents[bad]] = True
            return out, rows
    return _each(_ttls_of, values, _DOUBLES)


def _times(values: list[Any]) -> Any:
    """_ts per value, null where it raises (transform() then says why)."""
    text = _text_array(values)
    if text is not None:
        epoch = pc.fill_null(pc.match_substring_regex(text, _EPOCH_TEXT), False)
        parts = pc.extract_regex(pc.if_else(epoch, text, None), _EPOCH_TEXT)
        seconds = pc.struct_field(parts, [0]).cast(pa.int64())
        fraction = pc.binary_join_element_wise(pc.struct_field(parts, [1]), "000000", "")
        micros = pc.utf8_slice_codeunits(fraction, 0, 6).cast(pa.int64())
        fast = pc.add(pc.multiply(seconds, 1_000_000), micros).cast(_TS)
        other = pc.and_(pc.invert(epoch), pc.is_valid(text))
        if not pc.any(other).as_py():
            return fast
        slow = col.timestamps(text.filter(other), reader=_ts)
        return pc.replace_with_mask(fast, other, slow)
    if set(map(type, values)) <= {float, int, _NONE}:
        try:
            number = pa.array(values, pa.float64())
        except _ARROW_ERRORS:
            return _each(_ts_or_none, values, _TS)[0]
        # datetime.fromtimestamp: whole seconds, and the fraction rounded half to even
        common = pc.fill_null(
            pc.and_(pc.greater_equal(number, 0.0), pc.less(number, _EPOCH_MAX)), False
        )
        other = pc.and_(pc.invert(common), number.is_valid()).to_numpy(zero_copy_only=False)
        number = pc.if_else(common, number, None)
        whole = pc.trunc(number)
        micros = pc.round(pc.multiply(pc.subtract(number, whole), 1e6), 0, "half_to_even")
        carry = pc.greater_equal(micros, 1e6)
        whole = pc.if_else(carry, pc.add(whole, 1.0), whole)
        micros = pc.if_else(carry, pc.subtract(micros, 1e6), micros)
        us = pc.add(pc.multiply(whole.cast(pa.int64()), 1_000_000), micros.cast(pa.int64()))
        fast = us.cast(_TS)
        if not other.any():
            return fast
        slow = pa.array([_ts_or_none(values[i]) for i in np.flatnonzero(other)], _TS)
        return pc.replace_with_mask(fast, pa.array(other), slow)
    return _each(_ts_or_none, values, _TS)[0]


def _singletons(text: pa.Array) -> Any:
    """`[value] if value else []` per value."""
    keep = col.truthy(text)
    offsets = np.zeros(len(text) + 1, dtype=np.int32)
    np.cumsum(keep.to_numpy(zero_copy_only=False), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), text.filter(keep))


def _sums(a: pa.Array, b: pa.Array) -> tuple[Any, Any]:
    """a + b where both are there, and where the sum might not fit a long."""
    big = np.zeros(len(a), dtype=bool)
    for v in (a, b):  # not pc.abs: it wraps at -2**63
        out = pc.or_(pc.greater_equal(v, _BIG), pc.less_equal(v, -_BIG))
        big |= pc.fill_null(out, False).to_numpy(zero_copy_only=False)
    return pc.add(pc.if_else(pa.array(big), None, a), b), big


class _Fields:
    """The records' values by key, each field read once as transform() reads it. `bad` marks
    the records whose row transform() must make (a helper raises, or a value would not fit
    the table's column)."""

    def __init__(self, values: dict[str, list[Any]], n: int) -> None:
        self.n = n
        self.bad = np.zeros(n, dtype=bool)
        self._values = values
        self._read: dict[tuple[Any, str], tuple[Any, Any]] = {}

    def values(self, key: str) -> list[Any]:
        return self._values[key]

    def read(self, how: Callable[[list[Any]], tuple[Any, Any]], key: str) -> Any:
        found = self._read.get((how, key))
        if found is None:
            found = self._read[(how, key)] = how(self.values(key))
        array, bad = found
        if bad is not None:
            self.bad |= bad
        return array

    def texts(self, key: str) -> Any:
        return self.read(_texts, key)

    def ints(self, key: str) -> Any:
        return self.read(_ints, key)

    def floats(self, key: str) -> Any:
        return self.read(_floats, key)

    def bools(self, key: str) -> Any:
        return self.read(_bools, key)

    def lists(self, key: str) -> Any:
        return self.read(_lists, key)


def _base_columns(f: _Fields, name: str) -> dict[str, Any]:
    uid = f.texts("uid")
    transport = col.per_value(str.lower, f.read(_strs, "proto"), _STR)
    if name in ("http", "ssl"):  # their logs have no proto
        transport = col.either(transport, pa.scalar("tcp"))
    return {
        "ts": _times(f.values("ts")),
        "event.kind": pa.scalar("event"),
        "event.category": pa.scalar(["network", "web"], _STRS) if name == "http" else _NETWORK,
        "event.type": pa.scalar(["connection"], _STRS) if name == "conn" else _PROTOCOL,
        "event.id": uid,
        "zeek.uid": uid,
        "source.ip": f.read(_ips, "id.orig_h"),
        "source.port": f.ints("id.orig_p"),
        "destination.ip": f.read(_ips, "id.resp_h"),
        "destination.port": f.ints("id.resp_p"),
        "network.transport": transport,
        "network.community_id": f.texts("community_id"),
    }


def _conn_columns(f: _Fields) -> dict[str, Any]:
    duration = f.floats("duration")
    nanos = pc.multiply(duration, 1e9)
    fits = pc.less(pc.abs(nanos), 9.2e18)  # false for nan and inf: round() raises for those
    f.bad |= pc.fill_null(pc.invert(fits), False).to_numpy(zero_copy_only=False)
    nanos = pc.round(pc.if_else(fits, nanos, None), 0, "half_to_even").cast(pa.int64())
    orig_pkts, resp_pkts = f.ints("orig_pkts"), f.ints("resp_pkts")
    orig_ip_bytes, resp_ip_bytes = f.ints("orig_ip_bytes"), f.ints("resp_ip_bytes")
    total_bytes, big_bytes = _sums(orig_ip_bytes, resp_ip_bytes)
    total_pkts, big_pkts = _sums(orig_pkts, resp_pkts)
    f.bad |= big_bytes | big_pkts
    local_orig, local_resp = f.bools("local_orig"), f.bools("local_resp")
    # a list of services (not what conn.log writes) goes to transform()
    service = f.texts("service")
    direction = pc.add(pc.multiply(local_orig.cast(pa.int8()), 2), local_resp.cast(pa.int8()))
    return {
        "event.duration": nanos,
        "source.bytes": orig_ip_bytes,
        "source.packets": orig_pkts,
        "destination.bytes": resp_ip_bytes,
        "destination.packets": resp_pkts,
        "network.protocol": col.per_value(_service_protocol, service, _STR),
        "network.bytes": total_bytes,
        "network.packets": total_pkts,
        "network.direction": _DIRECTIONS.take(direction),
        "zeek.conn.duration": duration,
        "zeek.conn.orig_bytes": f.ints("orig_bytes"),
        "zeek.conn.resp_bytes": f.ints("resp_bytes"),
        "zeek.conn.state": f.texts("conn_state"),
        "zeek.conn.local_orig": local_orig,
        "zeek.conn.local_resp": local_resp,
        "zeek.conn.missed_bytes": f.ints("missed_bytes"),
        "zeek.conn.history": f.texts("history"),
        "zeek.conn.service": service,
        "zeek.conn.tunnel_parents": f.lists("tunnel_parents"),
        "zeek.conn.vlan": f.ints("vlan"),
    }


def _split_domain(query: str) -> dict[str, str | None]:
    return dict(zip(("registered", "subdomain", "tld"), split_domain(query), strict=True))


def _dns_columns(f: _Fields) -> dict[str, Any]:
    query = f.texts("query")
    rcode_name = f.texts("rcode_name")
    answers = f.read(_answers, "answers")
    flags = np.zeros(f.n, dtype=np.int64)
    for flag in _DNS_FLAGS:
        flags = flags * 2 + pc.fill_null(f.bools(flag), False).to_numpy(zero_copy_only=False)
    flat_ips = col.per_value(_ip, answers.flatten(), _STR)
    keep = flat_ips.is_valid()
    counts = np.bincount(
        pc.list_parent_indices(answers).to_numpy()[keep.to_numpy(zero_copy_only=False)],
        minlength=f.n,
    )
    offsets = np.zeros(f.n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    resolved = pa.ListArray.from_arrays(pa.array(offsets), flat_ips.filter(keep))
    parts = col.per_value(_split_domain, query, _DOMAIN_PARTS)
    answered = pc.or_(pc.is_valid(rcode_name), pc.greater(pc.list_value_length(answers), 0))
    outcome = pc.if_else(pc.equal(rcode_name, "NOERROR"), "success", "failure")
    return {
        "network.protocol": pa.scalar("dns"),
        "event.outcome": outcome,
        "dns.id": f.read(_trans_ids, "trans_id"),
        "dns.type": pc.if_else(answered, "answer", "query"),
        "dns.question.name": query,
        "dns.question.type": f.texts("qtype_name"),
        "dns.question.class": f.texts("qclass_name"),
        "dns.question.registered_domain": pc.struct_field(parts, [0]),
        "dns.question.subdomain": pc.struct_field(parts, [1]),
        "dns.question.top_level_domain": pc.struct_field(parts, [2]),
        "dns.response_code": rcode_name,
        "dns.header_flags": _FLAG_LISTS.take(pa.array(flags)),
        "dns.resolved_ip": resolved,
        "zeek.dns.rtt": f.floats("rtt"),
        "zeek.dns.qclass": f.ints("qclass"),
        "zeek.dns.qtype": f.ints("qtype"),
        "zeek.dns.rcode": f.ints("rcode"),
        "zeek.dns.z": f.ints("Z"),
        "zeek.dns.answers": answers,
        "zeek.dns.ttls": f.read(_ttls, "TTLs"),
        "zeek.dns.rejected": f.bools("rejected"),
        "related.hosts": _singletons(query),
    }


def _trans_ids(values: list[Any]) -> tuple[Any, Any]:
    """`str(trans_id)`: TSV gives text, JSON a number."""
    text = _text_array(values)
    if text is not None:
        return text, None
    if set(map(type, values)) <= {int, _NONE}:
        try:
            return pa.array(values, pa.int64()).cast(_STR), None
        except _ARROW_ERRORS:
            pass
    return _each(_str_or_none, values, _STR)


# uri: a proxy request's absolute form (its path after the third "/"), or the path itself
_AFTER_HOST = r"(?s)^[^/]*/[^/]*/[^/]*(?P<path>/.*)$"
_PATH_QUERY = r"(?s)^(?P<path>[^?]*)(?:\?(?P<query>.*))?$"


def _http_columns(f: _Fields) -> dict[str, Any]:
    host = f.texts("host")
    uri = f.texts("uri")
    status = f.ints("status_code")
    username = f.texts("username")
    orig_mime = f.lists("orig_mime_types")
    resp_mime = f.lists("resp_mime_types")
    domain = col.per_value(_host_domain, host, _STR)
    absolute = pc.or_(pc.starts_with(uri, "http://"), pc.starts_with(uri, "https://"))
    absolute = pc.fill_null(absolute, False)
    after_host = pc.struct_field(pc.extract_regex(uri, _AFTER_HOST), [0])
    path_part = pc.if_else(absolute, pc.coalesce(after_host, "/"), uri)
    parts = pc.extract_regex(path_part, _PATH_QUERY)
    query = pc.struct_field(parts, [1])
    relative = pc.if_else(
        col.truthy(host), pc.binary_join_element_wise("http://", host, uri, ""), None
    )
    return {
        "event.outcome": pc.if_else(pc.less(status, 400), "success", "failure"),
        "network.protocol": pa.scalar("http"),
        "destination.domain": col.per_value(_host_name, domain, _STR),
        "url.original": uri,
        "url.full": pc.if_else(absolute, uri, relative),
        "url.domain": domain,
        "url.path": pc.struct_field(parts, [0]),
        "url.query": pc.if_else(col.truthy(query), query, None),
        "url.username": username,
        "http.version": f.texts("version"),
        "http.request.method": f.texts("method"),
        "http.request.referrer": f.texts("referrer"),
        "http.request.body.bytes": f.ints("request_body_len"),
        "http.request.mime_type": col.first(orig_mime),
        "http.response.status_code": status,
        "http.response.body.bytes": f.ints("response_body_len"),
        "http.response.mime_type": col.first(resp_mime),
        "user_agent.original": f.texts("user_agent"),
        "zeek.http.trans_depth": f.ints("trans_depth"),
        "zeek.http.status_msg": f.texts("status_msg"),
        "zeek.http.info_code": f.ints("info_code"),
        "zeek.http.info_msg": f.texts("info_msg"),
        "zeek.http.origin": f.texts("origin"),
        "zeek.http.tags": f.lists("tags"),
        "zeek.http.proxied": f.lists("proxied"),
        "zeek.http.orig_fuids": f.lists("orig_fuids"),
        "zeek.http.orig_filenames": f.lists("orig_filenames"),
        "zeek.http.orig_mime_types": orig_mime,
        "zeek.http.resp_fuids": f.lists("resp_fuids"),
        "zeek.http.resp_filenames": f.lists("resp_filenames"),
        "zeek.http.resp_mime_types": resp_mime,
        "related.user": _singletons(username),
    }


def _ssl_columns(f: _Fields) -> dict[str, Any]:
    version = f.texts("version")
    server_name = f.texts("server_name")
    established = f.bools("established")
    chain = col.first(f.lists("cert_chain_fps"))
    client_chain = col.first(f.lists("client_cert_chain_fps"))
    return {
        "event.outcome": pc.if_else(established, "success", "failure"),
        "network.protocol": pa.scalar("tls"),
        "destination.domain": server_name,
        "tls.version": col.per_value(lambda v: _tls_version(v)[1], version, _STR),
        "tls.version_protocol": col.per_value(lambda v: _tls_version(v)[0], version, _STR),
        "tls.cipher": f.texts("cipher"),
        "tls.curve": f.texts("curve"),
        "tls.resumed": f.bools("resumed"),
        "tls.established": established,
        "tls.next_protocol": f.texts("next_protocol"),
        "tls.client.server_name": server_name,
        "tls.client.ja3": f.texts("ja3"),
        "tls.client.hash.sha256": client_chain,
        "tls.client.subject": f.texts("client_subject"),
        "tls.client.issuer": f.texts("client_issuer"),
        "tls.server.ja3s": f.texts("ja3s"),
        "tls.server.hash.sha256": chain,
        "tls.server.subject": f.texts("subject"),
        "tls.server.issuer": f.texts("issuer"),
        "zeek.ssl.version": version,
        "zeek.ssl.last_alert": f.texts("last_alert"),
        "zeek.ssl.ssl_history": f.texts("ssl_history"),
        "zeek.ssl.cert_chain_fps": f.lists("cert_chain_fps"),
        "zeek.ssl.client_cert_chain_fps": f.lists("client_cert_chain_fps"),
        "zeek.ssl.sni_matches_cert": f.bools("sni_matches_cert"),
        "zeek.ssl.validation_status": f.texts("validation_status"),
        "related.hash": col.unique_values(chain, client_chain),
    }


_COLUMNS = {"conn": _conn_columns, "dns": _dns_columns, "http": _http_columns, "ssl": _ssl_columns}
_KEYS = {  # the keys each log reads, for _Fields
    "conn": (
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
        "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
        "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
        "tunnel_parents", "community_id", "vlan",
    ),
    "dns": (
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id",
        "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name",
        "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected", "community_id",
    ),
    "http": (
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth",
        "method", "host", "uri", "referrer", "version", "user_agent", "origin",
        "request_body_len", "response_body_len", "status_code", "status_msg", "info_code",
        "info_msg", "tags", "username", "proxied", "orig_fuids", "orig_filenames",
        "orig_mime_types", "resp_fuids", "resp_filenames", "resp_mime_types", "proto",
        "community_id",
    ),
    "ssl": (
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "version", "cipher",
        "curve", "server_name", "resumed", "last_alert", "next_protocol", "established",
        "ssl_history", "cert_chain_fps", "client_cert_chain_fps", "sni_matches_cert",
        "validation_status", "ja3", "ja3s", "subject", "issuer", "client_subject",
        "client_issuer", "proto", "community_id",
    ),
}  # fmt: skip


def _log_columns(name: str, values: dict[str, list[Any]], n: int) -> tuple[dict[str, Any], Any]:
    """The columns of the records of one log, and where transform() must make the row."""
    f = _Fields(values, n)
    out = _base_columns(f, name)
    out.update(_COLUMNS[name](f))
    return out, f.bad


def _filled(value: Any, n: int, type_: pa.DataType) -> Any:
    if isinstance(value, pa.Array):
        return value
    return pa.repeat(value if value is not None else pa.scalar(None, type_), n)


@col.columnar(raw={"_path": "string", "*": "json"})
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute, log by
    log (conn, dns, http, ssl) when a batch holds several."""
    n = len(batch)
    path = batch["_path"]
    unnamed = np.flatnonzero(pc.invert(col.truthy(path)).to_numpy(zero_copy_only=False))
    if len(unnamed):  # no _path: the log is told from the record's keys
        records = batch.values("*")
        mask = np.zeros(n, dtype=bool)
        mask[unnamed] = True
        guessed = pa.array([_guess_path(records[i]) for i in unnamed], _STR)
        path = pc.replace_with_mask(path, pa.array(mask), guessed)
    codes = pc.fill_null(pc.index_in(path, pa.array(_TABLES)), -1).to_numpy(zero_copy_only=False)
    logs = np.unique(codes).tolist()
    if logs == [-1]:  # no record of a log transform() knows: it says why
        return {"ts": pa.nulls(n, _TS), col.ROW_PATH: True}
    if len(logs) == 1:  # the usual batch: records of one log
        name = _TABLES[logs[0]]
        out, bad = _log_columns(name, batch.fields(_KEYS[name]), n)
        out["_table"] = path
        out[col.ROW_PATH] = pa.array(bad)
        return out
    # several logs (or records of none, which transform() refuses): each log on its own,
    # then the columns put back in record order
    parts: list[tuple[Any, dict[str, Any], Any]] = []
    for i in logs:
        rows = np.flatnonzero(codes == i)
        if i < 0:
            parts.append((rows, {}, np.ones(len(rows), dtype=bool)))
            continue
        name = _TABLES[i]
        values = batch.fields(_KEYS[name], rows.tolist())
        parts.append((rows, *_log_columns(name, values, len(rows))))
    back = pa.array(np.argsort(np.concatenate([rows for rows, _, _ in parts]), kind="stable"))
    types: dict[str, pa.DataType] = {}
    for _, columns, _ in parts:
        for key, value in columns.items():
            types.setdefault(key, value.type)
    out = {
        key: pa.concat_arrays(
            [_filled(columns.get(key), len(rows), type_) for rows, columns, _ in parts]
        ).take(back)
        for key, type_ in types.items()
    }
    out["_table"] = pc.if_else(pa.array(codes >= 0), path, None)
    out[col.ROW_PATH] = pa.array(np.concatenate([bad for _, _, bad in parts])).take(back)
    return out
