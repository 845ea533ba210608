"""Amazon GuardDuty finding -> ECS alert.

Records are the EventBridge events GuardDuty publishes ("detail-type": "GuardDuty Finding",
the finding in "detail"), one per line as an EventBridge rule or Firehose writes them to S3.
A bare finding (GuardDuty's own S3 export, one finding per line) is read the same way.

GuardDuty sends a finding again when it recurs, with the same id, a higher service.count and
a new updatedAt: ts is updatedAt, event.start/end are when the activity was first/last seen.

Where the other side of the activity is (service.action.*.remoteIpDetails) depends on the
direction: an inbound connection, a port probe or an API call comes from it (source.*); an
outbound connection goes to it (destination.*), with the instance as the source.

`transform` makes the row of one record; `transform_columns` makes the same rows for a batch
of records with Arrow compute (the transformer uses it; what it leaves goes to transform()).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


def _bucket_names(resource: dict[str, Any]) -> list[Any]:
    """The names of resource.s3BucketDetails (empty ones too)."""
    return [b.get("name") for b in resource.get("s3BucketDetails") or [] if isinstance(b, dict)]


def _intel(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in evidence.get("threatIntelligenceDetails") or [] if isinstance(d, dict)]


def _threat_list_names(intel: list[dict[str, Any]]) -> list[Any]:
    return [d["threatListName"] for d in intel if d.get("threatListName")]


def _threat_names(intel: list[dict[str, Any]]) -> list[Any]:
    return [n for d in intel for n in d.get("threatNames") or []]


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
    buckets = _bucket_names(resource)
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
    intel = _intel(evidence)

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
                "threat_list_names": _threat_list_names(intel),
                "threat_names": _threat_names(intel),
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


# --- the batch version: the same rows for a batch of records, with Arrow compute ---------------
# The finding's raw fields, read at the top of a bare finding and under "detail" of an
# EventBridge event. The insides of the json values (the action, the resource) are read into
# Arrow structs by key (_convert); what transform() does with a value is done per distinct
# value (col.per_value, col.per_value_checked); the rest (which action, additionalInfo,
# evidence) in Python.
_FINDING_RAW = {
    "type": "string",
    "id": "string",
    "title": "string",
    "description": "string",
    "schemaVersion": "string",
    "arn": "string",
    "accountId": "string",
    "region": "string",
    "createdAt": "string",
    "updatedAt": "string",
    "severity": "double",
    "service.detectorId": "string",
    "service.featureName": "string",
    "service.archived": "boolean",
    "service.count": "long",
    "service.resourceRole": "string",
    "service.eventFirstSeen": "string",
    "service.eventLastSeen": "string",
    "service.action": "json",
    "service.additionalInfo": "json",
    "service.evidence": "json",
    "resource": "json",
}
_RAW = {
    **_FINDING_RAW,
    **{f"detail.{k}": v for k, v in _FINDING_RAW.items()},
    "detail-type": "string",
    "time": "string",
    "account": "string",
}


def _struct(**fields: pa.DataType) -> pa.StructType:
    return pa.struct(list(fields.items()))


_S = pa.string()
_TS = pa.timestamp("us", "UTC")
_IP = _struct(ipAddressV4=_S, ipAddressV6=_S)
_REMOTE = _struct(
    ipAddressV4=_S,
    ipAddressV6=_S,
    country=_struct(countryName=_S),
    city=_struct(cityName=_S),
    organization=_struct(asn=_S, asnOrg=_S),
)
_SIDE = {
    "remoteIpDetails": _REMOTE,
    "localIpDetails": _IP,
    "localPortDetails": _struct(port=pa.int64()),
}
# what transform() reads of an action's object (the one of its kind)
_DETAIL = _struct(
    connectionDirection=_S,
    protocol=_S,
    blocked=pa.bool_(),
    api=_S,
    serviceName=_S,
    verb=_S,
    userAgent=_S,
    domain=_S,
    sourceIps=pa.list_(_S),
    remotePortDetails=_struct(port=pa.int64()),
    portProbeDetails=pa.list_(_struct(**_SIDE)),
    **_SIDE,
)
_RESOURCE = _struct(
    resourceType=_S,
    instanceDetails=_struct(
        availabilityZone=_S,
        instanceId=_S,
        instanceType=_S,
        networkInterfaces=pa.list_(
            _struct(privateIpAddress=_S, publicIp=_S, privateDnsName=_S, publicDnsName=_S)
        ),
    ),
    accessKeyDetails=_struct(accessKeyId=_S, principalId=_S, userName=_S, userType=_S),
    kubernetesDetails=_struct(kubernetesUserDetails=_struct(username=_S, uid=_S)),
    eksClusterDetails=_struct(name=_S),
    s3BucketDetails=pa.list_(_struct(name=_S)),
)
# ISO 8601 in UTC with "Z": Arrow's cast reads it exactly as datetime.fromisoformat does.
_KINDS = {key: i for i, key in enumerate(_ACTIONS, 1)}  # 0: none of them
_NET, _API, _PROBE, _DNS, _K8S, _RDS = (_KINDS[k] for k in _ACTIONS)
_CATEGORIES = {
    0: ["intrusion_detection"],
    1: ["intrusion_detection", "network"],
    2: ["intrusion_detection", "malware"],
    3: ["intrusion_detection", "network", "malware"],
}
_EMPTY: dict[str, Any] = {}
_IN_ORDER = msgspec.json.Encoder()  # json_text_nonempty's (keys in their order)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


def _get(values: list[Any], key: str) -> list[Any]:
    """as_dict(value).get(key) per value."""
    return [v.get(key) if type(v) is dict else None for v in values]


def _np(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _convert(values: list[Any], type_: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Python values as Arrow: an object as a struct by key (as as_dict(v).get(key) reads it;
    [] reads as {}, null as null), a list as a list; where a value does not convert so (a
    value of another type: transform() decides), null and flagged."""
    try:
        return pa.array(values, type_), np.zeros(len(values), dtype=bool)
    except _ARROW_ERRORS:
        pass
    # one by one: pyarrow reads a struct's values as objects or as key-value pairs ("" and []
    # as no pairs) after the first it meets, so values that read alone may not read together
    bad = np.zeros(len(values), dtype=bool)
    parts: list[pa.Array] = []
    for i, v in enumerate(values):
        try:
            parts.append(pa.array([v], type_))
        except _ARROW_ERRORS:
            parts.append(pa.nulls(1, type_))
            bad[i] = True
    return pa.concat_arrays(parts) if parts else pa.array([], type_), bad


def _text(values: list[Any]) -> tuple[pa.Array, np.ndarray]:
    """Python values passed on as they are: text (or None); anything else is flagged."""
    try:
        return pa.array(values, _S), np.zeros(len(values), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        bad = np.array([v is not None and type(v) is not str for v in values], dtype=bool)
        return pa.array([v if type(v) is str else None for v in values], _S), bad


def _iso_times(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """iso_ts_or_none per value, and where it raises."""
    ts, raised = col.timestamps_checked(values, iso_ts_or_none)
    return ts, _np(raised)


def _ips(values: pa.Array) -> pa.Array:
    return col.per_value(strict_ip_or_none, values, _S)


def _or_none(values: pa.Array) -> pa.Array:
    """`value or None` per value."""
    return pc.if_else(col.truthy(values), values, None)


def _pick(type_: pa.DataType, n: int, *cases: tuple[np.ndarray, pa.Array]) -> pa.Array:
    """Per record, the value of the first case whose mask holds there (null if none)."""
    out = pa.nulls(n, type_)
    for mask, values in reversed(cases):
        out = pc.if_else(pa.array(mask, pa.bool_()), values, out)
    return out


def _lists(n: int, *parts: tuple[np.ndarray, pa.Array]) -> pa.Array:
    """Per record, the list of the values of `parts` (record index, value), in part order."""
    rows = np.concatenate([r for r, _ in parts]).astype(np.int64)
    values = pa.concat_arrays([v.cast(_S) for _, v in parts])
    order = np.argsort(rows, kind="stable")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


def _pairs(parents: np.ndarray, first: pa.Array, second: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(record, value) of first and second item by item: f0, s0, f1, s1, ..."""
    m = len(first)
    order = np.arange(2 * m).reshape(2, m).T.ravel()
    return np.repeat(parents, 2), pa.concat_arrays([first, second]).take(pa.array(order))


def _object_texts(lines: bytes) -> pa.Array:
    """Of JSON values one a line, the lines that are non-empty objects (null for the others),
    without a Python object per line."""
    data = np.frombuffer(lines, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)  # JSON text holds newlines escaped: one per value
    if len(lines) >= 2**31:  # more than a string array holds: one by one instead
        raise OverflowError("texts too long for one array")
    offsets = np.zeros(len(ends) + 1, dtype=np.int32)
    offsets[1:] = ends + 1
    starts = offsets[:-1]
    valid = (data[starts] == ord("{")) & (ends - starts > 2)  # "{}" is None too
    with_newline = pa.StringArray.from_buffers(
        len(ends), pa.py_buffer(offsets), pa.py_buffer(lines)
    )
    return pc.if_else(pa.array(valid), pc.utf8_slice_codeunits(with_newline, 0, -1), None)


def _user_agents(extras: list[Any]) -> tuple[list[Any], np.ndarray]:
    """_user_agent(as_dict(extra)) per value (the JSON text in "value" read once), and where
    it raises."""
    out: list[Any] = []
    bad = np.zeros(len(extras), dtype=bool)
    from_text: dict[str, Any] = {}
    for i, extra in enumerate(extras):
        if type(extra) is not dict:
            out.append(None)
            continue
        text: str | None = None
        if extra.get("userAgent") is None:
            value = extra.get("value")
            if type(value) is not str or "fullUserAgent" not in value:
                out.append(None)  # what _user_agent gives for it, without a call
                continue
            text = value
            if text in from_text:
                out.append(from_text[text])
                continue
        try:
            found = _user_agent(extra)
        except Exception:
            out.append(None)
            bad[i] = True
            continue
        if text is not None:
            from_text[text] = found
        out.append(found)
    return out, bad


@col.columnar(raw=_RAW)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute."""
    n = len(batch)
    row = np.zeros(n, dtype=bool)  # records left to transform()
    everywhere = np.arange(n, dtype=np.int64)

    # --- the finding: "detail" of an EventBridge event, else the record itself
    env = batch.present("detail")
    env_np = _np(env)
    envs = int(env_np.sum())

    def at(path: str) -> pa.Array:
        if envs == n:
            return batch["detail." + path]
        if envs == 0:
            return batch[path]
        return pc.if_else(env, batch["detail." + path], batch[path])

    def py(path: str) -> list[Any]:
        if envs == n:
            return batch.values("detail." + path)
        if envs == 0:
            return batch.values(path)
        inner, outer = batch.values("detail." + path), batch.values(path)
        return [d if e else b for e, d, b in zip(env_np, inner, outer, strict=True)]

    def texts(values: list[Any]) -> pa.Array:
        """json_text_nonempty(as_dict(value), sort_keys=False) per value."""
        try:
            return _object_texts(_IN_ORDER.encode_lines(values))
        except Exception:  # the standard library writes it, or transform() says why
            pass
        out: list[str | None] = []
        for i, v in enumerate(values):
            try:
                out.append(json_text_nonempty(v, sort_keys=False) if type(v) is dict else None)
            except Exception:
                out.append(None)
                row[i] = True
        return pa.array(out, _S)

    if envs < n:  # "detail": null is not a finding either
        row |= np.array(
            [not e and "detail" in r for e, r in zip(env_np, batch.records, strict=True)], bool
        )
    if envs:
        finding_type = pc.fill_null(pc.equal(batch["detail-type"], "GuardDuty Finding"), False)
        row |= env_np & ~_np(finding_type)
    ftype, fid = at("type"), at("id")
    service_there = pc.if_else(env, batch.present("detail.service"), batch.present("service"))
    # without them transform() raises; an id or a service that is null: transform() decides
    row |= _np(pc.is_null(ftype)) | _np(pc.is_null(fid)) | ~_np(service_there)

    severity = at("severity")
    exact = pc.fill_null(pc.less(pc.abs(severity), 2.0**53), True)  # int() of it is exact
    row |= ~_np(exact)
    severity = pc.if_else(exact, severity, None)

    updated, bad = _iso_times(at("updatedAt"))
    row |= bad
    created, bad = _iso_times(at("createdAt"))
    row |= bad
    sent = pa.nulls(n, _TS)
    if envs:
        sent, bad = _iso_times(pc.if_else(env, batch["time"], None))
        row |= bad
    first_seen, bad = _iso_times(at("service.eventFirstSeen"))
    row |= bad
    last_seen, bad = _iso_times(at("service.eventLastSeen"))
    row |= bad

    # --- the activity: which action, and its object
    actions = py("service.action")
    kind = np.zeros(n, dtype=np.int8)
    details: list[Any] = []
    for i, action in enumerate(actions):
        found = [k for k in _ACTIONS if k in action] if type(action) is dict else []
        if len(found) > 1:  # transform() reads one key's object under another's branch
            row[i] = True
        if found:
            kind[i] = _KINDS[found[0]]
            d = action[found[0]]
            details.append(d if type(d) is dict else _EMPTY)
        else:
            details.append(_EMPTY)
    is_net, is_probe, is_api = kind == _NET, kind == _PROBE, kind == _API
    is_dns, is_k8s, is_rds = kind == _DNS, kind == _K8S, kind == _RDS
    has_remote = is_net | is_probe | is_api | is_k8s | is_rds
    probing = pa.array(is_probe)

    action_type, bad = _text(_get(actions, "actionType"))
    row |= bad
    detail, bad = _convert(details, _DETAIL)
    row |= bad

    def of(node: pa.Array, path: str) -> pa.Array:
        return pc.struct_field(node, path.split("."))

    # remoteIpDetails/localIpDetails are the action's, or its first port probe's
    probe = col.first(of(detail, "portProbeDetails"))
    remote = pc.if_else(probing, of(probe, "remoteIpDetails"), of(detail, "remoteIpDetails"))
    local = pc.if_else(probing, of(probe, "localIpDetails"), of(detail, "localIpDetails"))
    local_port = pc.if_else(
        probing, of(probe, "localPortDetails.port"), of(detail, "localPortDetails.port")
    )
    # _endpoint() reads a remoteIpDetails that is a non-empty object (Python says which)
    remote_py = _get(details, "remoteIpDetails")
    for i in np.flatnonzero(is_probe).tolist():
        probes = details[i].get("portProbeDetails")
        first = probes[0] if probes and type(probes) is list else None
        remote_py[i] = first.get("remoteIpDetails") if type(first) is dict else None
    full = np.array([type(v) is dict and bool(v) for v in remote_py], dtype=bool)

    remote_ip = pc.coalesce(_ips(of(remote, "ipAddressV4")), _ips(of(remote, "ipAddressV6")))
    remote_port = pc.if_else(pa.array(is_net), of(detail, "remotePortDetails.port"), None)
    country = _or_none(of(remote, "country.countryName"))
    city = _or_none(of(remote, "city.cityName"))
    asn, failed = col.per_value_checked(
        int_cast_or_none, of(remote, "organization.asn"), pa.int64()
    )
    bad = _np(failed)
    row |= bad & has_remote & full
    as_org = of(remote, "organization.asnOrg")
    local_ip = pc.coalesce(_ips(of(local, "ipAddressV4")), _ips(of(local, "ipAddressV6")))

    direction = col.per_value(str.lower, of(detail, "connectionDirection"), _S)
    outbound = is_net & _np(pc.fill_null(pc.equal(direction, "outbound"), False))
    inbound = is_net & _np(pc.fill_null(pc.equal(direction, "inbound"), False))
    transport = col.per_value(lambda v: v.lower() or None, of(detail, "protocol"), _S)
    # kubernetes: the first of sourceIps where remoteIpDetails gives no address
    k8s_only = is_k8s & _np(pc.is_null(remote_ip))
    k8s_ip = _ips(col.first(of(detail, "sourceIps")))

    src_local = outbound
    src_remote = has_remote & ~outbound & ~k8s_only
    dst_remote = outbound
    dst_local = (is_net & ~outbound) | is_probe
    source_ip = _pick(_S, n, (src_local, local_ip), (src_remote, remote_ip), (k8s_only, k8s_ip))
    destination_ip = _pick(_S, n, (dst_remote, remote_ip), (dst_local, local_ip))
    source_full = pa.array(src_remote & full)
    destination_full = pa.array(dst_remote & full)

    k8s_agent = of(detail, "userAgent")
    own_agent = is_k8s & _np(pc.is_valid(k8s_agent))
    extras = py("service.additionalInfo")
    agents, bad = _user_agents(extras)
    row |= bad & ~own_agent
    agent_text, bad = _text(agents)
    row |= bad & ~own_agent

    # --- the resource
    resources = py("resource")
    resource, bad = _convert(resources, _RESOURCE)
    row |= bad
    user_name = col.either(
        of(resource, "accessKeyDetails.userName"),
        of(resource, "kubernetesDetails.kubernetesUserDetails.username"),
    )
    user_id = _or_none(
        col.either(
            of(resource, "accessKeyDetails.principalId"),
            of(resource, "kubernetesDetails.kubernetesUserDetails.uid"),
        )
    )
    nics = of(resource, "instanceDetails.networkInterfaces")
    nic = pc.list_flatten(nics)
    nic_rows = _np(pc.list_parent_indices(nics))
    nic_ips = _pairs(nic_rows, _ips(of(nic, "privateIpAddress")), _ips(of(nic, "publicIp")))
    hosts = _pairs(nic_rows, of(nic, "privateDnsName"), of(nic, "publicDnsName"))
    s3 = of(resource, "s3BucketDetails")
    buckets = of(pc.list_flatten(s3), "name")
    named = col.truthy(buckets)
    bucket_rows = _np(pc.list_parent_indices(s3))[_np(named)]

    list_rows: list[int] = []
    list_names: list[Any] = []
    threat_rows: list[int] = []
    threat_names: list[Any] = []
    for i, evidence in enumerate(py("service.evidence")):
        if type(evidence) is not dict:
            continue
        try:
            intel = _intel(evidence)
            lists, names = _threat_list_names(intel), _threat_names(intel)
        except Exception:
            row[i] = True
            continue
        if all(type(v) is str for v in lists) and all(type(v) is str or v is None for v in names):
            list_rows += [i] * len(lists)
            list_names += lists
            threat_rows += [i] * len(names)
            threat_names += names
        else:
            row[i] = True

    # --- the row
    purpose = col.per_value(lambda t: t.split(":", 1)[0], ftype, _S)
    network = pc.fill_null(pc.is_in(action_type, pa.array(sorted(_NETWORK_ACTIONS))), False)
    malware = pc.fill_null(pc.is_in(purpose, pa.array(sorted(_MALWARE))), False)
    category = pc.add(pc.cast(network, pa.int8()), pc.multiply(pc.cast(malware, pa.int8()), 2))
    gd = "aws.guardduty."
    return {
        col.ROW_PATH: pa.array(row),
        "ts": pc.coalesce(updated, sent, created),
        "message": at("title"),
        "event.kind": "alert",
        "event.category": col.lookup(category, _CATEGORIES, None, pa.list_(_S)),
        "event.type": ["info"],
        "event.action": col.per_value(str.lower, action_type, _S),
        "event.id": fid,
        "event.provider": "guardduty",
        "event.severity": col.per_value(int, severity, pa.int64()),
        "event.created": created,
        "event.start": first_seen,
        "event.end": last_seen,
        "rule.id": ftype,
        "rule.name": ftype,
        "rule.category": purpose,
        "cloud.provider": "aws",
        "cloud.account.id": col.either(at("accountId"), pc.if_else(env, batch["account"], None)),
        "cloud.region": col.either(at("region"), pc.if_else(env, batch["region"], None)),
        "cloud.availability_zone": of(resource, "instanceDetails.availabilityZone"),
        "cloud.instance.id": of(resource, "instanceDetails.instanceId"),
        "cloud.machine.type": of(resource, "instanceDetails.instanceType"),
        "source.ip": source_ip,
        "source.port": _pick(pa.int64(), n, (src_local, local_port), (src_remote, remote_port)),
        "source.geo": source_full,
        "source.geo.country_name": country,
        "source.geo.city_name": city,
        "source.as": source_full,
        "source.as.number": asn,
        "source.as.organization": source_full,
        "source.as.organization.name": as_org,
        "destination.ip": destination_ip,
        "destination.port": _pick(
            pa.int64(), n, (dst_remote, remote_port), (dst_local, local_port)
        ),
        "destination.geo": destination_full,
        "destination.geo.country_name": country,
        "destination.geo.city_name": city,
        "destination.as": destination_full,
        "destination.as.number": asn,
        "destination.as.organization": destination_full,
        "destination.as.organization.name": as_org,
        "network.transport": _pick(_S, n, (is_net | is_dns, transport)),
        "network.direction": _pick(
            _S, n, (inbound | outbound, direction), (is_probe, pa.repeat(pa.scalar("inbound"), n))
        ),
        "dns.question": pa.array(is_dns),
        "dns.question.name": of(detail, "domain"),
        "user.name": user_name,
        "user.id": user_id,
        "user_agent.original": pc.if_else(pa.array(own_agent), k8s_agent, agent_text),
        gd + "schema_version": at("schemaVersion"),
        gd + "arn": at("arn"),
        gd + "severity": severity,
        gd + "severity_label": col.per_value(_severity_label, severity, _S),
        gd + "description": at("description"),
        gd + "detector_id": at("service.detectorId"),
        gd + "feature_name": at("service.featureName"),
        gd + "archived": at("service.archived"),
        gd + "count": at("service.count"),
        gd + "resource_role": at("service.resourceRole"),
        gd + "resource_type": of(resource, "resourceType"),
        gd + "action_type": action_type,
        gd + "api": _pick(_S, n, (is_api, of(detail, "api")), (is_k8s, of(detail, "verb"))),
        gd + "api_service": _pick(_S, n, (is_api, of(detail, "serviceName"))),
        gd + "blocked": _pick(pa.bool_(), n, (is_net | is_probe | is_dns, of(detail, "blocked"))),
        gd + "access_key_id": of(resource, "accessKeyDetails.accessKeyId"),
        gd + "user_type": of(resource, "accessKeyDetails.userType"),
        gd + "s3_bucket_names": _lists(n, (bucket_rows, buckets.filter(named))),
        gd + "eks_cluster_name": of(resource, "eksClusterDetails.name"),
        gd + "threat_list_names": _lists(n, (np.array(list_rows), pa.array(list_names, _S))),
        gd + "threat_names": _lists(n, (np.array(threat_rows), pa.array(threat_names, _S))),
        gd + "resource": texts(resources),
        gd + "action": texts(actions),
        gd + "additional_info": texts(extras),
        # transform() lists source.ip, destination.ip, then the instance's addresses
        "related.ip": _lists(n, (everywhere, source_ip), (everywhere, destination_ip), nic_ips),
        "related.user": _lists(n, (everywhere, user_name), (everywhere, user_id)),
        "related.hosts": _lists(n, hosts),
    }
