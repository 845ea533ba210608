"""AWS VPC Flow Logs -> ECS.

Rows come from the space-delimited text files that VPC Flow Logs delivers to S3 (one header
line, then one flow per line). The default format is version 2:

    version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes
    start end action log-status

Custom formats (versions 3 to 5) are read by their header too; the extra columns used here are
vpc-id, subnet-id, instance-id, region, az-id, tcp-flags, type, pkt-srcaddr, pkt-dstaddr,
flow-direction and traffic-path, all optional.

One row is one direction of a flow during the capture window, so its packets and bytes are
those sent by srcaddr to dstaddr: they go to source.packets/bytes and network.packets/bytes.

NODATA rows (no traffic on the interface during the window) and SKIPDATA rows (records
skipped during the window, a gap in visibility) are kept, with event.action "nodata" or
"skipdata" and no addresses: both tell that an interface is still being logged, and SKIPDATA
that some of its traffic was not.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col

# IANA protocol numbers -> ECS network.transport (lowercase IANA keyword).
_TRANSPORT = {
    "1": "icmp",
    "2": "igmp",
    "4": "ipv4",
    "6": "tcp",
    "17": "udp",
    "41": "ipv6",
    "47": "gre",
    "50": "esp",
    "51": "ah",
    "58": "ipv6-icmp",
    "89": "ospf",
    "103": "pim",
    "112": "vrrp",
    "132": "sctp",
}

_ACTIONS = {
    "ACCEPT": ("accept", "allowed", "success"),
    "REJECT": ("reject", "denied", "failure"),
}

# Addresses inside a VPC or not routable on the internet: flows between two of them are
# "internal", from one of them to anything else "outbound", and so on (ECS network.direction).
_INTERNAL_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
)
_INTERNAL_V6 = tuple(ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10"))

_FLOW_DIRECTION = {"ingress": "ingress", "egress": "egress"}

# traffic-path (custom formats, egress only): where the traffic leaves the VPC through.
_TRAFFIC_PATH = {
    "1": "same-vpc",
    "2": "internet-gateway-or-gateway-endpoint",
    "3": "virtual-private-gateway",
    "4": "intra-region-vpc-peering",
    "5": "inter-region-vpc-peering",
    "6": "local-gateway",
    "7": "gateway-vpc-endpoint",
    "8": "internet-gateway",
}


@lru_cache(maxsize=1 << 16)
def _addr(value: str) -> tuple[str, bool] | None:
    """(canonical text, is internal) for an address, None for anything else."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    nets = _INTERNAL_V4 if ip.version == 4 else _INTERNAL_V6
    return str(ip), any(ip in net for net in nets)  # type: ignore[operator]


def _val(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return None if value is None or value == "-" else value


def _int(record: dict[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None or value == "-":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"column {key} is not a number: {value!r}") from None


def _direction(src: tuple[str, bool] | None, dst: tuple[str, bool] | None) -> str | None:
    if src is None or dst is None:
        return None
    if src[1]:
        return "internal" if dst[1] else "outbound"
    return "inbound" if dst[1] else "external"


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a VPC flow log row is a mapping of columns, got {type(record).__name__}")
    status = record.get("log-status")
    if status is None or "start" not in record:
        raise ValueError(
            "not a VPC flow log row: start or log-status is missing "
            "(a row cut short, or no header line?)"
        )
    start = _int(record, "start")
    end = _int(record, "end")
    if start is None:
        raise ValueError("column start is empty")
    account = _val(record, "account-id")
    interface = _val(record, "interface-id")

    started = datetime.fromtimestamp(start, UTC)
    out: dict[str, Any] = {
        "ts": started,
        "cloud": {
            "provider": "aws",
            "account": {"id": account},
            "region": _val(record, "region"),
            "instance": {"id": _val(record, "instance-id")},
        },
        "aws": {
            "vpcflow": {
                "version": _val(record, "version"),
                "interface_id": interface,
                "log_status": status,
                "vpc_id": _val(record, "vpc-id"),
                "subnet_id": _val(record, "subnet-id"),
                "az_id": _val(record, "az-id"),
                "type": _val(record, "type"),
                "tcp_flags": _int(record, "tcp-flags"),
                "traffic_path": _TRAFFIC_PATH.get(record.get("traffic-path") or ""),
                "pkt_srcaddr": None,
                "pkt_dstaddr": None,
            }
        },
        "observer": {"vendor": "AWS", "product": "VPC Flow Logs"},
    }
    event: dict[str, Any] = {
        "kind": "event",
        "category": ["network"],
        "start": started,
        "end": datetime.fromtimestamp(end, UTC) if end is not None else None,
        "duration": (end - start) * 1_000_000_000 if end is not None else None,
    }
    out["event"] = event

    if status != "OK":
        if status not in ("NODATA", "SKIPDATA"):
            raise ValueError(f"unknown log-status {status!r}; known: OK, NODATA, SKIPDATA")
        event["action"] = status.lower()
        event["type"] = ["info"]
        out["related"] = {"ip": [], "user": [], "hosts": [], "hash": []}
        return out

    srcaddr = record.get("srcaddr")
    dstaddr = record.get("dstaddr")
    src = _addr(srcaddr) if srcaddr else None
    dst = _addr(dstaddr) if dstaddr else None
    if src is None or dst is None:
        raise ValueError(f"srcaddr/dstaddr are not IP addresses: {srcaddr!r}, {dstaddr!r}")
    action = _ACTIONS.get(record.get("action") or "")
    if action is None:
        raise ValueError(f"unknown action {record.get('action')!r}; known: ACCEPT, REJECT")
    protocol = _val(record, "protocol")
    packets = _int(record, "packets")
    nbytes = _int(record, "bytes")

    event["action"], allowed, event["outcome"] = action
    event["type"] = ["connection", allowed]
    direction = _FLOW_DIRECTION.get(record.get("flow-direction") or "") or _direction(src, dst)
    out["source"] = {
        "ip": src[0],
        "port": _int(record, "srcport"),
        "packets": packets,
        "bytes": nbytes,
    }
    out["destination"] = {"ip": dst[0], "port": _int(record, "dstport")}
    out["network"] = {
        "transport": _TRANSPORT.get(protocol or "", protocol),
        "iana_number": protocol,
        "type": "ipv6" if ":" in src[0] else "ipv4",
        "direction": direction,
        "packets": packets,
        "bytes": nbytes,
    }
    related = [src[0], dst[0]]
    for column, key in (("pkt-srcaddr", "pkt_srcaddr"), ("pkt-dstaddr", "pkt_dstaddr")):
        value = record.get(column)
        pkt = _addr(value) if value and value != "-" else None
        if pkt is not None:
            out["aws"]["vpcflow"][key] = pkt[0]
            if pkt[0] not in related:
                related.append(pkt[0])
    out["related"] = {"ip": related, "user": [], "hosts": [], "hash": []}
    return out


# -- the same rows, a batch at a time (see tarn.logsources.columnar) ------------------------------
_COLUMNS = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status", "vpc-id",
    "subnet-id", "instance-id", "region", "az-id", "tcp-flags", "type", "pkt-srcaddr",
    "pkt-dstaddr", "flow-direction", "traffic-path",
)  # fmt: skip
_PLAIN_INT = r"^-?[0-9]{1,18}$"
_INT64 = (-(2**63), 2**63 - 1)
# datetime.fromtimestamp(s, UTC) reads years 1 to 9999
_SECONDS = (-62135596800, 253402300799)


def _int_or_bad(value: str) -> int | None:
    """_int of one value, or None where it raises (or where the int does not fit a long)."""
    if value == "-":
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if _INT64[0] <= n <= _INT64[1] else None


def _ints(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """_int per value: the integers, and where _int raises (or the int is too big for a long)."""
    text = pc.fill_null(values, "-")
    plain = pc.match_substring_regex(text, _PLAIN_INT)
    if pc.all(pc.or_(plain, pc.equal(text, "-"))).as_py():
        return pc.if_else(plain, text, None).cast(pa.int64()), pa.repeat(False, len(text))
    ints = col.per_value(_int_or_bad, text, pa.int64())
    return ints, pc.and_(pc.not_equal(text, "-"), pc.is_null(ints))


def _addr_text(value: str) -> str | None:
    found = _addr(value) if value else None
    return found[0] if found else None


def _addr_internal(value: str) -> bool | None:
    found = _addr(value) if value else None
    return found[1] if found else None


def _value(batch: col.Batch, key: str) -> pa.Array:
    values = batch[key]
    return pc.if_else(pc.fill_null(pc.equal(values, "-"), False), None, values)


def _times(seconds: pa.Array) -> tuple[pa.Array, pa.Array]:
    """datetime.fromtimestamp(s, UTC) per value, and where it raises."""
    out_of_range = pc.fill_null(
        pc.or_(pc.less(seconds, _SECONDS[0]), pc.greater(seconds, _SECONDS[1])), False
    )
    usable = pc.if_else(out_of_range, None, seconds)
    return usable.cast(pa.timestamp("s", tz="UTC")), out_of_range


@col.columnar(raw=dict.fromkeys(_COLUMNS, "string"))
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of rows: the same rows, built with Arrow compute."""
    n = len(batch)
    status = batch["log-status"]
    # no log-status, or no start (not even a column for it): transform() says why
    refuse = pc.is_null(status)
    start, bad_start = _ints(batch["start"])
    end, bad_end = _ints(batch["end"])
    tcp_flags, bad_flags = _ints(batch["tcp-flags"])
    refuse = pc.or_(refuse, pc.or_(pc.or_(bad_start, bad_end), bad_flags))
    refuse = pc.or_(refuse, pc.is_null(start))
    started, start_range = _times(start)
    ended, end_range = _times(end)
    refuse = pc.or_(refuse, pc.or_(start_range, end_range))
    seconds = pc.subtract_checked(pc.fill_null(end, 0), pc.fill_null(start, 0))
    too_long = pc.greater(pc.abs(seconds), _INT64[1] // 1_000_000_000)
    refuse = pc.or_(refuse, too_long)  # the row path's duration does not fit a long
    duration = pc.if_else(pc.is_null(end), None, pc.multiply(seconds, 1_000_000_000))

    ok = pc.fill_null(pc.equal(status, "OK"), False)
    quiet = pc.fill_null(pc.is_in(status, pa.array(["NODATA", "SKIPDATA"])), False)
    refuse = pc.or_(refuse, pc.invert(pc.or_(ok, quiet)))  # unknown log-status

    srcaddr, dstaddr = batch["srcaddr"], batch["dstaddr"]
    # NODATA and SKIPDATA rows have no source or destination (nor their related.ip)
    src = pc.if_else(ok, col.per_value(_addr_text, srcaddr, pa.string()), None)
    dst = pc.if_else(ok, col.per_value(_addr_text, dstaddr, pa.string()), None)
    action = col.lookup(pc.fill_null(batch["action"], ""), _ACTIONS, None, pa.list_(pa.string()))
    packets, bad_packets = _ints(batch["packets"])
    nbytes, bad_bytes = _ints(batch["bytes"])
    srcport, bad_srcport = _ints(batch["srcport"])
    dstport, bad_dstport = _ints(batch["dstport"])
    flow_bad = pc.or_(
        pc.or_(pc.or_(pc.is_null(src), pc.is_null(dst)), pc.is_null(action)),
        pc.or_(pc.or_(bad_packets, bad_bytes), pc.or_(bad_srcport, bad_dstport)),
    )
    refuse = pc.or_(refuse, pc.and_(ok, flow_bad))

    flow_dir = col.lookup(
        pc.fill_null(batch["flow-direction"], ""), _FLOW_DIRECTION, None, pa.string()
    )
    src_internal = col.per_value(_addr_internal, srcaddr, pa.bool_())
    dst_internal = col.per_value(_addr_internal, dstaddr, pa.bool_())
    guessed = pc.if_else(
        src_internal,
        pc.if_else(dst_internal, "internal", "outbound"),
        pc.if_else(dst_internal, "inbound", "external"),
    )
    protocol = _value(batch, "protocol")
    pkt = {}
    for column in ("pkt-srcaddr", "pkt-dstaddr"):
        values = _value(batch, column)
        pkt[column] = pc.if_else(ok, col.per_value(_addr_text, values, pa.string()), None)
    quiet_action = pc.utf8_lower(status)
    actions = pc.list_element(action, 0) if len(action) else pa.nulls(n, pa.string())
    allowed = pc.list_element(action, 1) if len(action) else pa.nulls(n, pa.string())
    outcome = pc.list_element(action, 2) if len(action) else pa.nulls(n, pa.string())
    connection = pa.repeat(pa.scalar("connection"), n)
    vf = "aws.vpcflow."
    return {
        col.ROW_PATH: refuse,
        "ts": started,
        "cloud.provider": "aws",
        "cloud.account.id": _value(batch, "account-id"),
        "cloud.region": _value(batch, "region"),
        "cloud.instance.id": _value(batch, "instance-id"),
        vf + "version": _value(batch, "version"),
        vf + "interface_id": _value(batch, "interface-id"),
        vf + "log_status": status,
        vf + "vpc_id": _value(batch, "vpc-id"),
        vf + "subnet_id": _value(batch, "subnet-id"),
        vf + "az_id": _value(batch, "az-id"),
        vf + "type": _value(batch, "type"),
        vf + "tcp_flags": tcp_flags,
        vf + "traffic_path": col.lookup(
            pc.fill_null(batch["traffic-path"], ""), _TRAFFIC_PATH, None, pa.string()
        ),
        vf + "pkt_srcaddr": pkt["pkt-srcaddr"],
        vf + "pkt_dstaddr": pkt["pkt-dstaddr"],
        "observer.vendor": "AWS",
        "observer.product": "VPC Flow Logs",
        "event.kind": "event",
        "event.category": ["network"],
        "event.start": started,
        "event.end": ended,
        "event.duration": duration,
        "event.action": pc.if_else(ok, actions, quiet_action),
        "event.outcome": pc.if_else(ok, outcome, None),
        "event.type": pc.if_else(
            ok, _pairs(connection, allowed), pa.scalar(["info"], pa.list_(pa.string()))
        ),
        # flows only: NODATA and SKIPDATA rows have no addresses
        "source": ok,
        "source.ip": src,
        "source.port": srcport,
        "source.packets": packets,
        "source.bytes": nbytes,
        "destination": ok,
        "destination.ip": dst,
        "destination.port": dstport,
        "network": ok,
        "network.transport": pc.coalesce(
            col.lookup(pc.fill_null(protocol, ""), _TRANSPORT, None, pa.string()), protocol
        ),
        "network.iana_number": protocol,
        "network.type": pc.if_else(pc.match_substring(pc.fill_null(src, ""), ":"), "ipv6", "ipv4"),
        "network.direction": pc.coalesce(flow_dir, guessed),
        "network.packets": packets,
        "network.bytes": nbytes,
        "related.ip": pc.if_else(
            ok,
            col.unique_values(src, dst, pkt["pkt-srcaddr"], pkt["pkt-dstaddr"]),
            pa.scalar([], pa.list_(pa.string())),
        ),
    }


def _pairs(first: pa.Array, second: pa.Array) -> pa.Array:
    """[first, second] per record."""
    values = pa.concat_arrays([first, second.cast(pa.string())])
    n = len(first)
    order = pa.array([i + k * n for i in range(n) for k in (0, 1)], pa.int64())
    offsets = pa.array(range(0, 2 * n + 1, 2), pa.int32())
    return pa.ListArray.from_arrays(offsets, values.take(order))
