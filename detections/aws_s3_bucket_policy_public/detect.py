import json


def _params(record):
    try:
        return json.loads(record.deepget("aws.cloudtrail.request_parameters") or "{}")
    except ValueError:
        return {}


def _public(principal):
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def detect(record):
    if (
        record.deepget("event.action") != "PutBucketPolicy"
        or record.deepget("event.outcome") != "success"
    ):
        return False
    policy = _params(record).get("bucketPolicy") or {}
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return False
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return any(
        s.get("Effect") == "Allow" and _public(s.get("Principal"))
        for s in statements
        if isinstance(s, dict)
    )


def title(record):
    return f"Bucket {_params(record).get('bucketName', '?')} made public by {record.deepget('user.name', 'someone')}"


def dedupe(record):
    return _params(record).get("bucketName", "unknown")
