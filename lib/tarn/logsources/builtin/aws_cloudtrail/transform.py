"""AWS CloudTrail record -> ECS: `transform` per record, `transform_columns` per batch (the
same rows, built with Arrow compute; the transformer uses it, transform() decides the rest)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


def _event_type(action: str) -> list[str]:
    return [next((t for p, t in _TYPES if action.startswith(p)), "info")]


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
            "type": _event_type(action),
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


@col.columnar(
    raw={
        "eventTime": "string",
        "eventName": "string",
        "eventSource": "string",
        "eventID": "string",
        "eventVersion": "string",
        "eventType": "string",
        "eventCategory": "string",
        "requestID": "string",
        "awsRegion": "string",
        "recipientAccountId": "string",
        "sourceIPAddress": "string",
        "userAgent": "string",
        "errorCode": "string",
        "errorMessage": "string",
        "readOnly": "boolean",
        "managementEvent": "boolean",
        "userIdentity.type": "string",
        "userIdentity.principalId": "string",
        "userIdentity.arn": "string",
        "userIdentity.accountId": "string",
        "userIdentity.userName": "string",
        "userIdentity.accessKeyId": "string",
        "userIdentity.invokedBy": "string",
        "userIdentity.sessionContext.attributes.mfaAuthenticated": "string",
        "userIdentity.sessionContext.sessionIssuer.type": "string",
        "userIdentity.sessionContext.sessionIssuer.arn": "string",
        "userIdentity.sessionContext.sessionIssuer.userName": "string",
        "requestParameters.userName": "string",
        "responseElements.ConsoleLogin": "string",
        "additionalEventData.MFAUsed": "string",
        "requestParameters": "json",
        "responseElements": "json",
        "additionalEventData": "json",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute."""
    action = batch["eventName"]
    provider = batch["eventSource"]
    identity = "userIdentity."
    issuer = "userIdentity.sessionContext.sessionIssuer."

    user_name = col.either(batch[identity + "userName"], batch[issuer + "userName"])
    is_root = pc.fill_null(pc.equal(batch[identity + "type"], "Root"), False)
    user_name = pc.if_else(pc.and_(is_root, pc.invert(col.truthy(user_name))), "root", user_name)
    target = batch["requestParameters.userName"]
    target = pc.if_else(pc.fill_null(pc.equal(target, user_name), False), None, target)

    outcome = pc.if_else(col.truthy(batch["errorCode"]), "failure", "success")
    console = pc.and_(
        pc.fill_null(pc.equal(action, "ConsoleLogin"), False), batch.present("responseElements")
    )
    login_ok = pc.fill_null(pc.equal(batch["responseElements.ConsoleLogin"], "Success"), False)
    outcome = pc.if_else(console, pc.if_else(login_ok, "success", "failure"), outcome)

    extra_mfa = col.to_bools(batch["additionalEventData.MFAUsed"])
    ct = "aws.cloudtrail."
    return {
        # no eventName: transform() raises (not a CloudTrail record) and sidelines it
        col.ROW_PATH: pc.is_null(action),
        "ts": col.timestamps(batch["eventTime"]),
        "event.id": batch["eventID"],
        "event.action": action,
        "event.provider": provider,
        "event.kind": "event",
        "event.category": col.lookup(
            pc.fill_null(provider, ""), _CATEGORIES, ["configuration"], pa.list_(pa.string())
        ),
        "event.type": col.per_value(_event_type, action, pa.list_(pa.string())),
        "event.outcome": outcome,
        "cloud.provider": "aws",
        "cloud.region": batch["awsRegion"],
        "cloud.account.id": col.either(batch["recipientAccountId"], batch[identity + "accountId"]),
        "source.ip": col.ips(batch["sourceIPAddress"]),
        "source.address": batch["sourceIPAddress"],
        "user_agent.original": batch["userAgent"],
        "user.name": user_name,
        "user.id": batch[identity + "principalId"],
        "user.target.name": target,
        "error.code": batch["errorCode"],
        "error.message": batch["errorMessage"],
        ct + "event_version": batch["eventVersion"],
        ct + "event_type": batch["eventType"],
        ct + "event_category": batch["eventCategory"],
        ct + "request_id": batch["requestID"],
        ct + "read_only": batch["readOnly"],
        ct + "management_event": batch["managementEvent"],
        ct + "recipient_account_id": batch["recipientAccountId"],
        ct + "user_identity.type": batch[identity + "type"],
        ct + "user_identity.arn": batch[identity + "arn"],
        ct + "user_identity.access_key_id": batch[identity + "accessKeyId"],
        ct + "user_identity.invoked_by": batch[identity + "invokedBy"],
        ct + "user_identity.session_context.mfa_authenticated": col.to_bools(
            batch[identity + "sessionContext.attributes.mfaAuthenticated"]
        ),
        ct + "user_identity.session_context.issuer.type": batch[issuer + "type"],
        ct + "user_identity.session_context.issuer.arn": batch[issuer + "arn"],
        ct + "user_identity.session_context.issuer.user_name": batch[issuer + "userName"],
        ct + "request_parameters": batch.json("requestParameters"),
        ct + "response_elements": batch.json("responseElements"),
        ct + "additional_eventdata": batch.json("additionalEventData"),
        ct + "console_login.mfa_used": pc.if_else(
            batch.present("additionalEventData"), extra_mfa, None
        ),
    }
