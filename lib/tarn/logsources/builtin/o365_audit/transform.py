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
    operation: str, params: dict[str, Any], record: dict[str, Any], own_domains: set[str]
) -> tuple[list[str], bool | None]:
    texts = [str(params[p]) for p in _FORWARD_PARAMS if params.get(p)]
    if operation == "UpdateInboxRules":  # Outlook client rules: actions live in OperationProperties
        props = record.get("OperationProperties")
        if isinstance(props, list):
            texts.extend(
                str(p.get("Value"))
                for p in props
                if isinstance(p, dict)
                and "Forward" in str(p.get("Name", "")) + str(p.get("Value", ""))
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


def _classify(
    record: dict[str, Any], operation: str, record_type: Any
) -> tuple[list[str], list[str]]:
    workload = record.get("Workload") or ""
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

    # Outcome: the login operations say it in their name; others in ResultStatus.
    status = record.get("ResultStatus")
    status_key = str(status).lower() if status is not None else ""
    if operation == "UserLoginFailed":
        outcome = "failure"
    elif status_key in _SUCCESS:
        outcome = "success"
    elif status_key in _FAILURE:
        outcome = "failure"
    else:
        outcome = "unknown"
    categories, types = (list(x) for x in _classify(record, operation, record_type))

    # Who was acted on: the Identity of an Exchange cmdlet, or a user target in AAD.
    target = params.get("Identity") or params.get("Mailbox")
    if not target and workload == "AzureActiveDirectory":
        for t in record.get("Target") or []:
            if isinstance(t, dict) and t.get("Type") == 5 and "@" in str(t.get("ID", "")):
                target = t["ID"]
                break
    target = str(target) if target else None
    if target and target == user_id:
        target = None

    own_domains = {d for d in (domain, _domain(target) if target and "@" in target else None) if d}
    forward_to, external = _forwarding(operation, params, record, own_domains)

    modified = record.get("ModifiedProperties")
    role = None
    if operation.endswith("member to role.") or operation.endswith("member from role."):
        for prop in modified or []:
            if isinstance(prop, dict) and prop.get("Name") == "Role.DisplayName":
                role = prop.get("NewValue") or prop.get("OldValue")

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
