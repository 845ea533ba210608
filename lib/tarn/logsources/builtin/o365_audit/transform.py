"""Office 365 Management Activity API audit record -> ECS.

One record per line, as the API's content blobs hold them (Exchange, AzureActiveDirectory,
SharePoint/OneDrive and other workloads share the common schema: CreationTime, Id, Operation,
RecordType, UserId, ClientIP, ResultStatus, Workload, ...).

`CreationTime` has no zone and is UTC. `ClientIP` comes as `a.b.c.d`, `a.b.c.d:port`,
`[v6]:port` or bare IPv6; the address and port are split out.

Mail forwarding: `Set-Mailbox`/`Set-InboxRule`/`New-InboxRule` and `UpdateInboxRules` records
have their forwarding targets (ForwardingSmtpAddress, ForwardingAddress, ForwardTo, RedirectTo,
ForwardAsAttachmentTo) listed in `o365.audit.forwarding.addresses`; `forwarding.external` is
true when one of them is outside the acting user's and the target mailbox's domains (the
organization's own domain list is not in the record, so this is a heuristic).
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
from tarn.logsources.helpers import JSON_ENCODER

# RecordType numbers -> names (the common ones; others keep only the number).
_RECORD_TYPES = {
    1: "ExchangeAdmin",
    2: "ExchangeItem",
    3: "ExchangeItemGroup",
    4: "SharePoint",
    6: "SharePointFileOperation",
    8: "AzureActiveDirectory",
    9: "AzureActiveDirectoryAccountLogon",
    14: "SharePointSharingOperation",
    15: "AzureActiveDirectoryStsLogon",
    18: "SecurityComplianceCenterEOPCmdlet",
    20: "PowerBIAudit",
    25: "MicrosoftTeams",
    28: "ThreatIntelligence",
    40: "SecurityComplianceAlerts",
    50: "ExchangeItemAggregated",
    64: "AirInvestigation",
}
_SUCCESS = {"success", "succeeded", "partiallysucceeded", "true"}
_FAILURE = {"failed", "failure", "false"}
_FORWARD_PARAMS = (
    "ForwardingSmtpAddress",
    "ForwardingAddress",
    "ForwardTo",
    "RedirectTo",
    "ForwardAsAttachmentTo",
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

# Operation name (or prefix for Exchange cmdlets) -> (categories, types)
_AAD_OPERATIONS = {
    "UserLoggedIn": (["authentication"], ["start"]),
    "UserLoginFailed": (["authentication"], ["start"]),
    "Add user.": (["iam"], ["user", "creation"]),
    "Delete user.": (["iam"], ["user", "deletion"]),
    "Update user.": (["iam"], ["user", "change"]),
    "Reset user password.": (["iam"], ["user", "change"]),
    "Change user password.": (["iam"], ["user", "change"]),
    "Add member to role.": (["iam"], ["admin", "change"]),
    "Remove member from role.": (["iam"], ["admin", "deletion"]),
    "Add member to group.": (["iam"], ["group", "change"]),
    "Remove member from group.": (["iam"], ["group", "change"]),
    "Consent to application.": (["iam"], ["change"]),
    "Add service principal credentials.": (["iam"], ["change"]),
}
_FILE_TYPES = {
    "FileAccessed": "access",
    "FileAccessedExtended": "access",
    "FilePreviewed": "access",
    "FileDownloaded": "access",
    "FileSyncDownloadedFull": "access",
    "FileUploaded": "creation",
    "FileSyncUploadedFull": "creation",
    "FileModified": "change",
    "FileModifiedExtended": "change",
    "FileRenamed": "change",
    "FileMoved": "change",
    "FileDeleted": "deletion",
    "FileRecycled": "deletion",
}
_CMDLET_TYPES = (
    ("New-", "creation"),
    ("Add-", "change"),
    ("Set-", "change"),
    ("Enable-", "change"),
    ("Disable-", "change"),
    ("Update-", "change"),
    ("Remove-", "deletion"),
    ("Get-", "info"),
)


@lru_cache(maxsize=4096)
def _address(value: str) -> tuple[str | None, int | None]:
    """ClientIP forms -> (ip, port)."""
    text = value.strip()
    port = None
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        text = host
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:  # v4:port
        text, _, p = text.partition(":")
        port = int(p) if p.isdigit() else None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None, None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), port


def _ts(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("CreationTime is missing or not text")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"CreationTime {value!r} is not an ISO 8601 time") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _json(value: Any) -> str | None:
    if value in (None, [], {}, ""):
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _pairs(value: Any) -> dict[str, Any]:
    """[{"Name": n, "Value": v}, ...] -> {n: v} (Parameters, ExtendedProperties, ...)."""
    out: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("Name"), str):
                out[item["Name"]] = item.get("Value")
    return out


def _split_user(user_id: str | None) -> tuple[str | None, str | None, str | None]:
    """UserId -> (name, domain, email)."""
    if not user_id:
        return None, None, None
    if "@" in user_id and " " not in user_id:
        name, _, domain = user_id.rpartition("@")
        return name, domain.lower(), user_id
    if "\\" in user_id:
        domain, _, name = user_id.partition("\\")
        return name, domain, None
    return user_id, None, None


def _client_agent(info: str) -> str | None:
    """Exchange's ClientInfoString, e.g. `Client=OWA;Mozilla/5.0 (...);` -> the agent part."""
    rest = info
    while rest:
        head, _, tail = rest.partition(";")
        key, eq, _ = head.partition("=")
        if not (eq and key.strip().isalnum()):
            break
        rest = tail  # skip Client=..., Action=... settings
    rest = rest.strip().rstrip(";").strip()
    return rest or None


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _forwarding(
    operation: str, params: dict[str, Any], props: Any, own_domains: set[str]
) -> tuple[list[str], bool | None]:
    """Forwarding targets of a cmdlet's Parameters (and of an Outlook rule's
    OperationProperties `props`), and whether one is outside `own_domains`."""
    texts = [str(params[p]) for p in _FORWARD_PARAMS if params.get(p)]
    # Outlook client rules (UpdateInboxRules): actions live in OperationProperties
    if operation == "UpdateInboxRules" and isinstance(props, list):
        texts.extend(
            str(p.get("Value"))
            for p in props
            if isinstance(p, dict) and "Forward" in str(p.get("Name", "")) + str(p.get("Value", ""))
        )
    if not texts:
        return [], None
    addresses = list(dict.fromkeys(a.lower() for t in texts for a in _EMAIL.findall(t)))
    if not addresses:
        return [], None
    external = any(
        not any(d == own or d.endswith("." + own) for own in own_domains)
        for d in map(_domain, addresses)
    )
    return addresses, external if own_domains else None


def _classify(workload: Any, operation: str, record_type: Any) -> tuple[list[str], list[str]]:
    workload = workload or ""
    if operation in _AAD_OPERATIONS:
        return _AAD_OPERATIONS[operation]
    if operation in _FILE_TYPES:
        return ["file"], [_FILE_TYPES[operation]]
    if record_type == 14 or "Sharing" in operation or operation.endswith("LinkCreated"):
        return ["file", "iam"], ["change"]
    if workload == "Exchange":
        if record_type in (2, 3, 50) or operation in ("MailItemsAccessed", "Send", "SendAs"):
            return ["email"], ["info"]
        for prefix, kind in _CMDLET_TYPES:
            if operation.startswith(prefix):
                category = ["iam"] if "Permission" in operation else ["configuration"]
                return category, [kind]
        return ["configuration"], ["info"]
    if workload == "AzureActiveDirectory":
        return ["iam"], ["info"]
    return ["configuration"] if workload else [], ["info"]


def _outcome(operation: str, status: Any) -> str:
    """The login operations say it in their name; others in ResultStatus."""
    status_key = str(status).lower() if status is not None else ""
    if operation == "UserLoginFailed":
        return "failure"
    if status_key in _SUCCESS:
        return "success"
    if status_key in _FAILURE:
        return "failure"
    return "unknown"


def _target(params: dict[str, Any], workload: Any, targets: Any, user_id: Any) -> str | None:
    """Who was acted on: the Identity of an Exchange cmdlet, or a user target in AAD."""
    target = params.get("Identity") or params.get("Mailbox")
    if not target and workload == "AzureActiveDirectory":
        for t in targets or []:
            if isinstance(t, dict) and t.get("Type") == 5 and "@" in str(t.get("ID", "")):
                target = t["ID"]
                break
    target = str(target) if target else None
    if target and target == user_id:
        target = None
    return target


def _own_domains(domain: str | None, target: str | None) -> set[str]:
    return {d for d in (domain, _domain(target) if target and "@" in target else None) if d}


def _role(operation: str, modified: Any) -> Any:
    """The directory role of a role membership change (ModifiedProperties)."""
    role = None
    if operation.endswith("member to role.") or operation.endswith("member from role."):
        for prop in modified or []:
            if isinstance(prop, dict) and prop.get("Name") == "Role.DisplayName":
                role = prop.get("NewValue") or prop.get("OldValue")
    return role


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"an O365 audit record is a JSON object, got {type(record).__name__}")
    operation = record.get("Operation")
    if not isinstance(operation, str) or "CreationTime" not in record:
        raise ValueError("not an O365 audit record: CreationTime and Operation are required")
    record_type = record.get("RecordType")
    workload = record.get("Workload")
    user_id = record.get("UserId")
    name, domain, email = _split_user(user_id)

    raw_ip = record.get("ClientIP") or record.get("ClientIPAddress") or record.get("ActorIpAddress")
    ip, port = _address(raw_ip) if isinstance(raw_ip, str) else (None, None)

    params = _pairs(record.get("Parameters"))
    extended = _pairs(record.get("ExtendedProperties"))
    devices = _pairs(record.get("DeviceProperties"))

    status = record.get("ResultStatus")
    outcome = _outcome(operation, status)
    categories, types = (list(x) for x in _classify(workload, operation, record_type))

    target = _target(params, workload, record.get("Target"), user_id)
    own_domains = _own_domains(domain, target)
    forward_to, external = _forwarding(
        operation, params, record.get("OperationProperties"), own_domains
    )

    modified = record.get("ModifiedProperties")
    role = _role(operation, modified)

    object_id = record.get("ObjectId")
    url = object_id if isinstance(object_id, str) and object_id.startswith("http") else None
    file_name = record.get("SourceFileName") or None
    user_agent = record.get("UserAgent") or extended.get("UserAgent") or None
    if not user_agent and isinstance(record.get("ClientInfoString"), str):
        user_agent = _client_agent(record["ClientInfoString"])
    error_code = record.get("ErrorNumber") or None
    logon_error = record.get("LogonError") or None

    code = _RECORD_TYPES.get(record_type) if isinstance(record_type, int) else None
    if code is None and record_type is not None:
        code = str(record_type)
    return {
        "ts": _ts(record["CreationTime"]),
        "event": {
            "id": record.get("Id"),
            "action": operation,
            "provider": workload,
            "code": code,
            "kind": "event",
            "category": categories,
            "type": types,
            "outcome": outcome,
            "reason": logon_error,
        },
        "organization": {"id": record.get("OrganizationId")},
        "user": {
            "id": user_id,
            "name": name,
            "domain": domain,
            "email": email,
            "target": {"name": target},
        },
        "source": {"ip": ip, "port": port},
        "user_agent": {"original": user_agent},
        "url": {"original": url},
        "file": {
            "name": file_name,
            "extension": (record.get("SourceFileExtension") or None) if file_name else None,
            "directory": record.get("SourceRelativeUrl") or None,
        },
        "error": {"code": str(error_code) if error_code else None, "message": logon_error},
        "o365": {
            "audit": {
                "record_type": record_type,
                "workload": workload,
                "result_status": str(status) if status is not None else None,
                "user_type": record.get("UserType"),
                "user_key": record.get("UserKey"),
                "object_id": object_id,
                "client_ip": raw_ip,
                "application_id": record.get("ApplicationId") or record.get("AppId"),
                "logon_error": logon_error,
                "site_url": record.get("SiteUrl"),
                "item_type": record.get("ItemType"),
                "external_access": record.get("ExternalAccess"),
                "originating_server": record.get("OriginatingServer"),
                "role_name": role,
                "inbox_rule_name": params.get("Name") if "InboxRule" in operation else None,
                "forwarding": {"addresses": forward_to, "external": external},
                "parameters": _json(record.get("Parameters")),
                "extended_properties": _json(record.get("ExtendedProperties")),
                "device_properties": _json(devices) if devices else None,
                "modified_properties": _json(modified),
                "actor": _json(record.get("Actor")),
                "target": _json(record.get("Target")),
            }
        },
        "related": {
            "ip": [ip] if ip else [],
            "user": [u for u in dict.fromkeys((user_id, name, target, *forward_to)) if u],
        },
    }


# -- the same rows, a batch at a time (see tarn.logsources.columnar) ------------------------------
_TS = pa.timestamp("us", tz="UTC")
_TEXTS = pa.list_(pa.string())
_INT64 = (-(2**63), 2**63 - 1)
_TEXT = (
    "CreationTime", "Id", "Operation", "OrganizationId", "ResultStatus", "UserKey", "Workload",
    "ClientIP", "ClientIPAddress", "ActorIpAddress", "ObjectId", "UserId", "ApplicationId",
    "AppId", "LogonError", "SiteUrl", "ItemType", "OriginatingServer", "SourceFileName",
    "SourceFileExtension", "SourceRelativeUrl", "UserAgent", "ClientInfoString", "ErrorNumber",
)  # fmt: skip
_WHOLE = (
    "Parameters", "ExtendedProperties", "DeviceProperties", "ModifiedProperties", "Actor",
    "Target", "OperationProperties",
)  # fmt: skip
_RAW = {
    **dict.fromkeys(_TEXT, "string"),
    "RecordType": "long",
    "UserType": "long",
    "ExternalAccess": "boolean",
    **dict.fromkeys(_WHOLE, "json"),
}
# JSON text that the sorted msgspec encoder (helpers.JSON_ENCODER, batch.json) and _json's
# json.dumps write alike: printable ASCII with the same escapes, integers only (floats are
# written differently).
_SAME_JSON = (
    r'^(?:"(?:[ !#-\[\]-~]|\\["\\bfnrt]|\\u[0-9a-f]{4})*"'
    r"|[\[\]{}:,]|-?(?:0|[1-9][0-9]*)|true|false|null)*$"
)
_EMPTY_JSON = pa.array(["[]", "{}", '""'])  # _json(value) is None for these values
_ROLE_OPS = ("member to role.", "member from role.")  # as _role reads them


def _reads_more(operation: str) -> bool:
    """transform() reads OperationProperties (_forwarding) or ModifiedProperties (_role) too."""
    return operation == "UpdateInboxRules" or operation.endswith(_ROLE_OPS)


def _ts_or_none(value: str) -> datetime | None:
    try:
        return _ts(value)
    except (ValueError, OverflowError):
        return None


def _address_or_none(value: str) -> tuple[str | None, int | None, bool]:
    """_address, and whether it raises or gives a port too big for a long."""
    try:
        ip, port = _address(value)
    except ValueError:
        return None, None, True
    if port is not None and not _INT64[0] <= port <= _INT64[1]:
        return None, None, True
    return ip, port, False


def _device_json(value: Any) -> tuple[str | None]:
    devices = _pairs(value)
    return (_json(devices) if devices else None,)


def _extended_agent(value: Any) -> tuple[str | None, bool]:
    """ExtendedProperties' UserAgent where it is text, and whether it is something else."""
    agent = _pairs(value).get("UserAgent")
    if not agent:
        return None, False
    return (agent, False) if type(agent) is str else (None, True)


def _aad_target(value: Any) -> tuple[str | None, int]:
    """_target of an AzureActiveDirectory record without Parameters, by its Target: the user
    found, and 0, or 1 where _target raises, or 2 where str() of the ID found could depend on
    the order of an object's keys (the sorted JSON text does not say)."""
    if isinstance(value, list) and any(
        isinstance(t, dict) and isinstance(t.get("ID"), (dict, list)) for t in value
    ):
        return None, 2
    try:
        return _target({}, "AzureActiveDirectory", value, None), 0
    except Exception:  # transform() raises the same and says why
        return None, 1


def _json_texts(values: list[Any]) -> pa.Array:
    """col.json_texts (helpers.JSON_ENCODER's text per value, null for None), in one call."""
    try:
        lines = JSON_ENCODER.encode_lines(values)
    except (TypeError, ValueError, UnicodeError, OverflowError):
        return col.json_texts(values)
    texts = pc.list_flatten(pc.split_pattern(pa.array([lines], pa.large_string()), "\n"))
    texts = texts.slice(0, len(values)).cast(pa.string())  # the text ends with a newline
    return pc.if_else(pc.equal(texts, "null"), None, texts)  # only None is written so


def _per_value(fn: Any, values: pa.Array, types: tuple[pa.DataType, ...]) -> list[pa.Array]:
    """col.per_value for a `fn` giving a tuple: one array per item (nulls stay null)."""
    encoded = pc.dictionary_encode(values)
    results = [fn(v) for v in encoded.dictionary.to_pylist()]
    return [pa.array([r[k] for r in results], t).take(encoded.indices) for k, t in enumerate(types)]


def _per_json(
    fn: Any, texts: pa.Array, values: list[Any], types: tuple[pa.DataType, ...]
) -> list[pa.Array]:
    """`fn` (giving a tuple) of each record's value, called once per distinct value, by its
    sorted JSON text `texts` (so fn must not depend on the order of an object's keys); one
    array per item, null where the value is None."""
    encoded = pc.dictionary_encode(texts)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    found, first = np.unique(codes, return_index=True)
    results: list[Any] = [(None,) * len(types)] * len(encoded.dictionary)
    for code, i in zip(found.tolist(), first.tolist(), strict=True):
        if code >= 0:
            results[code] = fn(values[i])
    return [pa.array([r[k] for r in results], t).take(encoded.indices) for k, t in enumerate(types)]


def _json_column(texts: pa.Array, values: list[Any]) -> pa.Array:
    """_json of each value, from its JSON text `texts` where that is the same."""
    out = pc.if_else(pc.fill_null(pc.is_in(texts, _EMPTY_JSON), False), None, texts)
    odd = pc.invert(pc.fill_null(pc.match_substring_regex(texts, _SAME_JSON), True))
    if pc.any(odd).as_py():
        rows = np.flatnonzero(odd.to_numpy(zero_copy_only=False)).tolist()
        out = pc.replace_with_mask(
            out, odd, pa.array([_json(values[i]) for i in rows], pa.string())
        )
    return out


def _classified(operation: pa.Array, record_type: pa.Array, workload: pa.Array) -> list[pa.Array]:
    """_classify per record (once per distinct Operation, RecordType and Workload)."""
    known: dict[tuple[Any, ...], int] = {}
    at = [
        known.setdefault(key, len(known))
        for key in zip(
            operation.to_pylist(), record_type.to_pylist(), workload.to_pylist(), strict=True
        )
    ]
    found = [_classify(w, op, rt) if op is not None else ([], []) for op, rt, w in known]
    order = pa.array(at, pa.int32())
    return [pa.array([f[k] for f in found], _TEXTS).take(order) for k in (0, 1)]


def _items(lists: pa.Array, most: int = 8) -> list[pa.Array]:
    """A list column as columns of its first, second, ... items (null where a list is
    shorter), which col.unique_values reads faster than lists; the lists themselves where
    one is longer than `most`."""
    lengths = lists.value_lengths().to_numpy(zero_copy_only=False)
    longest = int(lengths.max()) if len(lengths) else 0
    if longest > most:
        return [lists]
    starts = lists.offsets.to_numpy()[:-1]
    flat = lists.values
    return [flat.take(pa.array(starts + j, mask=lengths <= j)) for j in range(longest)]


def _numpy(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _acted_on(
    batch: col.Batch, columns: dict[str, pa.Array], target_texts: pa.Array
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """What transform() finds in Parameters, Target, OperationProperties and
    ModifiedProperties: the user acted on, forwarding addresses, role and inbox rule names;
    and the records to leave to transform() (it raises, or a value is not text)."""
    n = len(batch)
    operation, workload, user_id = columns["operation"], columns["workload"], columns["user_id"]
    parameters = batch.values("Parameters")
    targets = batch.values("Target")
    full = np.fromiter((type(v) is list and bool(v) for v in parameters), bool, n)
    full |= _numpy(col.per_value(_reads_more, operation, pa.bool_()))
    full &= _numpy(pc.is_valid(operation))  # no Operation: transform() says why
    # The common case, AzureActiveDirectory sign-ins and the like: a user in Target
    aad = _numpy(pc.equal(workload, "AzureActiveDirectory")) & ~full
    found, how = _per_json(_aad_target, target_texts, targets, (pa.string(), pa.int8()))
    how = pc.fill_null(how, 0).to_numpy(zero_copy_only=False)
    bad = aad & (how == 1)
    full |= aad & (how == 2)
    target = pc.if_else(pa.array(aad & (how == 0)), found, None)
    target = pc.if_else(_numpy(pc.equal(target, user_id)), None, target)
    out = {"target": target}
    rows = np.flatnonzero(full).tolist()
    if not rows:
        return out, bad
    # The others record by record, with transform()'s own helpers
    ops, workloads = operation.to_pylist(), workload.to_pylist()
    users, domains = user_id.to_pylist(), columns["domain"].to_pylist()
    props = batch.values("OperationProperties")
    modified = batch.values("ModifiedProperties")
    acted: list[str | None] = target.to_pylist()
    nothing: list[str] = []  # shared, never changed
    forward_to = [nothing] * n
    external: list[bool | None] = [None] * n
    role: list[Any] = [None] * n
    rule: list[Any] = [None] * n
    for i in rows:
        op = ops[i]
        try:
            params = _pairs(parameters[i])
            acted[i] = _target(params, workloads[i], targets[i], users[i])
            if params or op == "UpdateInboxRules":
                own = _own_domains(domains[i], acted[i])
                forward_to[i], external[i] = _forwarding(op, params, props[i], own)
            role[i] = _role(op, modified[i])
            rule[i] = params.get("Name") if "InboxRule" in op else None
        except Exception:  # transform() raises the same and says why
            bad[i] = True
            continue
        if not all(v is None or type(v) is str for v in (role[i], rule[i])):
            bad[i] = True  # no text for its column: transform()'s row is sidelined
            role[i] = rule[i] = None
    out["target"] = pa.array(acted, pa.string())
    out["forward_to"] = pa.array(forward_to, _TEXTS)
    out["external"] = pa.array(external, pa.bool_())
    out["role"] = pa.array(role, pa.string())
    out["rule"] = pa.array(rule, pa.string())
    return out, bad


@col.columnar(raw=_RAW)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute."""
    n = len(batch)
    operation = batch["Operation"]
    record_type = batch["RecordType"]
    workload = batch["Workload"]
    user_id = batch["UserId"]
    status = batch["ResultStatus"]
    texts = {p: _json_texts(batch.values(p)) for p in _WHOLE if p != "OperationProperties"}
    # no Operation (or not text): not an O365 audit record, transform() says so
    bad = ~_numpy(pc.is_valid(operation))

    name, domain, email = _per_value(_split_user, user_id, (pa.string(),) * 3)
    raw_ip = col.either(
        col.either(batch["ClientIP"], batch["ClientIPAddress"]), batch["ActorIpAddress"]
    )
    ip, port, bad_ip = _per_value(_address_or_none, raw_ip, (pa.string(), pa.int64(), pa.bool_()))
    bad |= _numpy(bad_ip)

    outcome = pc.fill_null(col.per_value(lambda s: _outcome("", s), status, pa.string()), "unknown")
    outcome = pc.if_else(_numpy(pc.equal(operation, "UserLoginFailed")), "failure", outcome)
    categories, types = _classified(operation, record_type, workload)

    columns = {"operation": operation, "workload": workload, "user_id": user_id, "domain": domain}
    acted, bad_acted = _acted_on(batch, columns, texts["Target"])
    bad |= bad_acted
    target = acted["target"]
    forward_to = acted.get("forward_to", pa.repeat(pa.scalar([], _TEXTS), n))

    # UserAgent, else ExtendedProperties' UserAgent, else the agent in ClientInfoString
    user_agent = batch["UserAgent"]
    has_agent = col.truthy(user_agent)
    extended = batch.values("ExtendedProperties")
    agent, bad_agent = _per_json(
        _extended_agent, texts["ExtendedProperties"], extended, (pa.string(), pa.bool_())
    )
    bad |= ~has_agent.to_numpy(zero_copy_only=False) & _numpy(bad_agent)
    user_agent = pc.coalesce(
        pc.if_else(has_agent, user_agent, agent),
        col.per_value(_client_agent, batch["ClientInfoString"], pa.string()),
    )
    (devices,) = _per_json(
        _device_json,
        texts["DeviceProperties"],
        batch.values("DeviceProperties"),
        (pa.string(),),
    )

    object_id = batch["ObjectId"]
    file_name = batch["SourceFileName"]
    has_file = col.truthy(file_name)
    extension = batch["SourceFileExtension"]
    directory = batch["SourceRelativeUrl"]
    logon_error = batch["LogonError"]
    logon_error = pc.if_else(col.truthy(logon_error), logon_error, None)
    error_code = batch["ErrorNumber"]
    code = col.lookup(record_type, _RECORD_TYPES, None, pa.string())
    related_user = col.unique_values(user_id, name, target, *_items(forward_to))
    a = "o365.audit."
    return {
        col.ROW_PATH: pa.array(bad),
        "ts": col.per_value(_ts_or_none, batch["CreationTime"], _TS),
        "event.id": batch["Id"],
        "event.action": operation,
        "event.provider": workload,
        "event.code": pc.coalesce(code, record_type.cast(pa.string())),
        "event.kind": "event",
        "event.category": categories,
        "event.type": types,
        "event.outcome": outcome,
        "event.reason": logon_error,
        "organization.id": batch["OrganizationId"],
        "user.id": user_id,
        "user.name": name,
        "user.domain": domain,
        "user.email": email,
        "user.target.name": target,
        "source.ip": ip,
        "source.port": port,
        "user_agent.original": user_agent,
        "url.original": pc.if_else(_numpy(pc.starts_with(object_id, "http")), object_id, None),
        "file.name": pc.if_else(has_file, file_name, None),
        "file.extension": pc.if_else(pc.and_(has_file, col.truthy(extension)), extension, None),
        "file.directory": pc.if_else(col.truthy(directory), directory, None),
        "error.code": pc.if_else(col.truthy(error_code), error_code, None),
        "error.message": logon_error,
        a + "record_type": record_type,
        a + "workload": workload,
        a + "result_status": status,
        a + "user_type": batch["UserType"],
        a + "user_key": batch["UserKey"],
        a + "object_id": object_id,
        a + "client_ip": raw_ip,
        a + "application_id": col.either(batch["ApplicationId"], batch["AppId"]),
        a + "logon_error": logon_error,
        a + "site_url": batch["SiteUrl"],
        a + "item_type": batch["ItemType"],
        a + "external_access": batch["ExternalAccess"],
        a + "originating_server": batch["OriginatingServer"],
        a + "role_name": acted.get("role", pa.nulls(n, pa.string())),
        a + "inbox_rule_name": acted.get("rule", pa.nulls(n, pa.string())),
        a + "forwarding.addresses": forward_to,
        a + "forwarding.external": acted.get("external", pa.nulls(n, pa.bool_())),
        a + "parameters": _json_column(texts["Parameters"], batch.values("Parameters")),
        a + "extended_properties": _json_column(texts["ExtendedProperties"], extended),
        a + "device_properties": devices,
        a + "modified_properties": _json_column(
            texts["ModifiedProperties"], batch.values("ModifiedProperties")
        ),
        a + "actor": _json_column(texts["Actor"], batch.values("Actor")),
        a + "target": _json_column(texts["Target"], batch.values("Target")),
        "related.ip": col.unique_values(ip),
        "related.user": related_user,
    }
