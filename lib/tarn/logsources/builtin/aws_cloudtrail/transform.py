"""AWS CloudTrail record -> ECS."""

from __future__ import annotations

from typing import Any

from tarn.logsources.helpers import ip_or_none, json_text, to_bool

# eventName prefixes -> ECS event.type; categories by service.
_TYPES = (
    ("Create", "creation"),
    ("Put", "creation"),
    ("Attach", "change"),
    ("Update", "change"),
    ("Modify", "change"),
    ("Stop", "change"),
    ("Delete", "deletion"),
    ("Remove", "deletion"),
    ("Detach", "deletion"),
    ("Get", "access"),
    ("List", "access"),
    ("Describe", "access"),
)
_CATEGORIES = {
    "iam.amazonaws.com": ["iam", "configuration"],
    "sts.amazonaws.com": ["authentication"],
    "signin.amazonaws.com": ["authentication"],
    "cloudtrail.amazonaws.com": ["configuration"],
    "s3.amazonaws.com": ["file"],
    "kms.amazonaws.com": ["configuration"],
}


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"a CloudTrail record is a JSON object, got {type(record).__name__}")
    if "eventTime" not in record or "eventName" not in record:
        raise ValueError("not a CloudTrail record: eventTime and eventName are required")
    identity = record.get("userIdentity") or {}
    session = identity.get("sessionContext") or {}
    issuer = session.get("sessionIssuer") or {}
    attributes = session.get("attributes") or {}
    request = record.get("requestParameters")
    response = record.get("responseElements")
    extra = record.get("additionalEventData")
    action = record["eventName"]
    provider = record.get("eventSource")

    user_name = identity.get("userName") or issuer.get("userName")
    if identity.get("type") == "Root" and not user_name:
        user_name = "root"
    target = request.get("userName") if isinstance(request, dict) else None

    outcome = "failure" if record.get("errorCode") else "success"
    if action == "ConsoleLogin" and isinstance(response, dict):
        outcome = "success" if response.get("ConsoleLogin") == "Success" else "failure"

    source_ip = ip_or_none(record.get("sourceIPAddress"))
    return {
        "ts": record["eventTime"],
        "event": {
            "id": record.get("eventID"),
            "action": action,
            "provider": provider,
            "kind": "event",
            "category": _CATEGORIES.get(provider or "", ["configuration"]),
            "type": [next((t for p, t in _TYPES if action.startswith(p)), "info")],
            "outcome": outcome,
        },
        "cloud": {
            "provider": "aws",
            "region": record.get("awsRegion"),
            "account": {"id": record.get("recipientAccountId") or identity.get("accountId")},
        },
        "source": {"ip": source_ip, "address": record.get("sourceIPAddress")},
        "user_agent": {"original": record.get("userAgent")},
        "user": {
            "name": user_name,
            "id": identity.get("principalId"),
            "target": {"name": target if target != user_name else None},
        },
        "error": {"code": record.get("errorCode"), "message": record.get("errorMessage")},
        "aws": {
            "cloudtrail": {
                "event_version": record.get("eventVersion"),
                "event_type": record.get("eventType"),
                "event_category": record.get("eventCategory"),
                "request_id": record.get("requestID"),
                "read_only": to_bool(record.get("readOnly")),
                "management_event": to_bool(record.get("managementEvent")),
                "recipient_account_id": record.get("recipientAccountId"),
                "user_identity": {
                    "type": identity.get("type"),
                    "arn": identity.get("arn"),
                    "access_key_id": identity.get("accessKeyId"),
                    "invoked_by": identity.get("invokedBy"),
                    "session_context": {
                        "mfa_authenticated": to_bool(attributes.get("mfaAuthenticated")),
                        "issuer": {
                            "type": issuer.get("type"),
                            "arn": issuer.get("arn"),
                            "user_name": issuer.get("userName"),
                        },
                    },
                },
                "request_parameters": json_text(request),
                "response_elements": json_text(response),
                "additional_eventdata": json_text(extra),
                "console_login": {
                    "mfa_used": to_bool(extra.get("MFAUsed")) if isinstance(extra, dict) else None
                },
            }
        },
    }
