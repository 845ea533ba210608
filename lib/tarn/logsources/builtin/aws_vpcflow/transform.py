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
