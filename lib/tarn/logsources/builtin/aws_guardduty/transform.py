"""Amazon GuardDuty finding -> ECS alert.

Records are the EventBridge events GuardDuty publishes ("detail-type": "GuardDuty Finding",
the finding in "detail"), one per line as an EventBridge rule or Firehose writes them to S3.
A bare finding (GuardDuty's own S3 export, one finding per line) is read the same way.

GuardDuty sends a finding again when it recurs, with the same id, a higher service.count and
a new updatedAt: ts is updatedAt, event.start/end are when the activity was first/last seen.

Where the other side of the activity is (service.action.*.remoteIpDetails) depends on the
direction: an inbound connection, a port probe or an API call comes from it (source.*); an
outbound connection goes to it (destination.*), with the instance as the source.
"""

from __future__ import annotations

import json
from typing import Any

from tarn.logsources.helpers import (
    as_dict,
    int_cast_or_none,
    iso_ts_or_none,
    json_text_nonempty,
    strict_ip_or_none,
)

# GuardDuty severity bands; Critical (9.0-10.0) is used by attack sequence findings.
_BANDS = ((9.0, "Critical"), (7.0, "High"), (4.0, "Medium"), (1.0, "Low"))

_ACTIONS = (
    "networkConnectionAction",
    "awsApiCallAction",
    "portProbeAction",
    "dnsRequestAction",
    "kubernetesApiCallAction",
    "rdsLoginAttemptAction",
)

# Threat purposes (the finding type's first part) that name malware.
_MALWARE = frozenset(("Backdoor", "CryptoCurrency", "Trojan", "Execution"))
_NETWORK_ACTIONS = frozenset(("NETWORK_CONNECTION", "PORT_PROBE", "DNS_REQUEST"))


def _severity_label(severity: float | None) -> str | None:
    if severity is None:
        return None
    for floor, label in _BANDS:
        if severity >= floor:
            return label
    return "Low"  # below 1.0 does not happen; treat as the lowest band


def _user_agent(extra: dict[str, Any]) -> str | None:
    """additionalInfo carries {"userAgent": {...}} as an object or inside the JSON text "value"."""
    agent = extra.get("userAgent")
    if agent is None:
        value = extra.get("value")
        if isinstance(value, str) and "fullUserAgent" in value:
            try:
                agent = as_dict(json.loads(value)).get("userAgent")
            except ValueError:
                return None
    return as_dict(agent).get("fullUserAgent")


def _endpoint(details: dict[str, Any] | None, port: Any = None) -> dict[str, Any]:
    """ECS source/destination fields from GuardDuty's remoteIpDetails."""
    if not details:
        return {"port": int_cast_or_none(port)} if port is not None else {}
    org = as_dict(details.get("organization"))
    return {
        "ip": strict_ip_or_none(details.get("ipAddressV4"))
        or strict_ip_or_none(details.get("ipAddressV6")),
        "port": int_cast_or_none(port),
        "geo": {
            "country_name": as_dict(details.get("country")).get("countryName") or None,
            "city_name": as_dict(details.get("city")).get("cityName") or None,
        },
        "as": {
            "number": int_cast_or_none(org.get("asn")),
            "organization": {"name": org.get("asnOrg")},
        },
    }


def _local(details: Any, port: Any = None) -> dict[str, Any]:
    details = as_dict(details)
    return {
        "ip": strict_ip_or_none(details.get("ipAddressV4"))
        or strict_ip_or_none(details.get("ipAddressV6")),
        "port": int_cast_or_none(port),
    }


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a GuardDuty record is a JSON object, got {type(record).__name__}")
    envelope = None
    finding = record
    if "detail" in record:
        envelope = record
        if record.get("detail-type") != "GuardDuty Finding":
            raise ValueError(
                f"not a GuardDuty finding: EventBridge detail-type is {record.get('detail-type')!r}"
            )
        finding = record["detail"]
        if not isinstance(finding, dict):
            raise ValueError("EventBridge detail is not an object")
    if "type" not in finding or "id" not in finding or "service" not in finding:
        raise ValueError("not a GuardDuty finding: id, type and service are required")

    ftype = finding["type"]
    service = as_dict(finding.get("service"))
    resource = as_dict(finding.get("resource"))
    action = as_dict(service.get("action"))
    action_type = action.get("actionType")
    severity = finding.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        severity = None

    ts = (
        iso_ts_or_none(finding.get("updatedAt"))
        or iso_ts_or_none(envelope.get("time") if envelope else None)
        or iso_ts_or_none(finding.get("createdAt"))
    )
    if ts is None:
        raise ValueError("finding has no usable updatedAt or createdAt time")

    # --- the activity: who talked to whom
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}
    dns: dict[str, Any] = {}
    blocked = None
    api = api_service = None
    user_agent = None
    detail: dict[str, Any] = {}
    for key in _ACTIONS:
        if key in action:
            detail = as_dict(action[key])
            break
    if "networkConnectionAction" in action:
        remote = _endpoint(
            detail.get("remoteIpDetails"), as_dict(detail.get("remotePortDetails")).get("port")
        )
        local = _local(
            detail.get("localIpDetails"), as_dict(detail.get("localPortDetails")).get("port")
        )
        direction = (detail.get("connectionDirection") or "").lower()
        if direction == "outbound":
            source, destination = local, remote
        else:
            source, destination = remote, local
        network = {
            "transport": (detail.get("protocol") or "").lower() or None,
            "direction": direction if direction in ("inbound", "outbound") else None,
        }
        blocked = detail.get("blocked")
    elif "portProbeAction" in action:
        probes = detail.get("portProbeDetails") or []
        first = as_dict(probes[0]) if probes else {}
        source = _endpoint(first.get("remoteIpDetails"))
        destination = _local(
            first.get("localIpDetails"), as_dict(first.get("localPortDetails")).get("port")
        )
        network = {"direction": "inbound"}
        blocked = detail.get("blocked")
    elif "awsApiCallAction" in action:
        source = _endpoint(detail.get("remoteIpDetails"))
        api = detail.get("api")
        api_service = detail.get("serviceName")
    elif "dnsRequestAction" in action:
        dns = {"question": {"name": detail.get("domain")}}
        network = {"transport": (detail.get("protocol") or "").lower() or None}
        blocked = detail.get("blocked")
    elif "kubernetesApiCallAction" in action:
        source = _endpoint(detail.get("remoteIpDetails"))
        if not source.get("ip"):
            ips = detail.get("sourceIps") or []
            source = {"ip": strict_ip_or_none(ips[0]) if ips else None}
        api = detail.get("verb")
        user_agent = detail.get("userAgent")
    elif "rdsLoginAttemptAction" in action:
        source = _endpoint(detail.get("remoteIpDetails"))

    extra = as_dict(service.get("additionalInfo"))
    if user_agent is None:
        user_agent = _user_agent(extra)

    # --- the resource
    instance = as_dict(resource.get("instanceDetails"))
    access_key = as_dict(resource.get("accessKeyDetails"))
    k8s_user = as_dict(as_dict(resource.get("kubernetesDetails")).get("kubernetesUserDetails"))
    buckets = [b.get("name") for b in resource.get("s3BucketDetails") or [] if isinstance(b, dict)]
    related_ip = [ip for ip in (source.get("ip"), destination.get("ip")) if ip]
    hosts: list[str] = []
    for nic in instance.get("networkInterfaces") or []:
        if not isinstance(nic, dict):
            continue
        for ip in (
            strict_ip_or_none(nic.get("privateIpAddress")),
            strict_ip_or_none(nic.get("publicIp")),
        ):
            if ip and ip not in related_ip:
                related_ip.append(ip)
        hosts.extend(h for h in (nic.get("privateDnsName"), nic.get("publicDnsName")) if h)
    user_name = access_key.get("userName") or k8s_user.get("username")
    user_id = access_key.get("principalId") or k8s_user.get("uid") or None

    purpose = ftype.split(":", 1)[0]
    category = ["intrusion_detection"]
    if action_type in _NETWORK_ACTIONS:
        category.append("network")
    if purpose in _MALWARE:
        category.append("malware")
    evidence = as_dict(service.get("evidence"))
    intel = [d for d in evidence.get("threatIntelligenceDetails") or [] if isinstance(d, dict)]

    return {
        "ts": ts,
        "message": finding.get("title"),
        "event": {
            "kind": "alert",
            "category": category,
            "type": ["info"],
            "action": action_type.lower() if isinstance(action_type, str) else None,
            "id": finding["id"],
            "provider": "guardduty",
            "severity": int(severity) if severity is not None else None,
            "created": iso_ts_or_none(finding.get("createdAt")),
            "start": iso_ts_or_none(service.get("eventFirstSeen")),
            "end": iso_ts_or_none(service.get("eventLastSeen")),
        },
        "rule": {"id": ftype, "name": ftype, "category": purpose},
        "cloud": {
            "provider": "aws",
            "account": {"id": finding.get("accountId") or (envelope or {}).get("account")},
            "region": finding.get("region") or (envelope or {}).get("region"),
            "availability_zone": instance.get("availabilityZone"),
            "instance": {"id": instance.get("instanceId")},
            "machine": {"type": instance.get("instanceType")},
        },
        "source": source,
        "destination": destination,
        "network": network,
        "dns": dns,
        "user": {"name": user_name, "id": user_id},
        "user_agent": {"original": user_agent},
        "aws": {
            "guardduty": {
                "schema_version": finding.get("schemaVersion"),
                "arn": finding.get("arn"),
                "severity": float(severity) if severity is not None else None,
                "severity_label": _severity_label(severity),
                "description": finding.get("description"),
                "detector_id": service.get("detectorId"),
                "feature_name": service.get("featureName"),
                "archived": service.get("archived"),
                "count": int_cast_or_none(service.get("count")),
                "resource_role": service.get("resourceRole"),
                "resource_type": resource.get("resourceType"),
                "action_type": action_type,
                "api": api,
                "api_service": api_service,
                "blocked": blocked if isinstance(blocked, bool) else None,
                "access_key_id": access_key.get("accessKeyId"),
                "user_type": access_key.get("userType"),
                "s3_bucket_names": [b for b in buckets if b],
                "eks_cluster_name": as_dict(resource.get("eksClusterDetails")).get("name"),
                "threat_list_names": [
                    d["threatListName"] for d in intel if d.get("threatListName")
                ],
                "threat_names": [n for d in intel for n in d.get("threatNames") or []],
                "resource": json_text_nonempty(resource, sort_keys=False),
                "action": json_text_nonempty(action, sort_keys=False),
                "additional_info": json_text_nonempty(extra, sort_keys=False),
            }
        },
        "related": {
            "ip": related_ip,
            "user": [u for u in (user_name, user_id) if u],
            "hosts": hosts,
            "hash": [],
        },
    }
