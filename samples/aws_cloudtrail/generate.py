#!/usr/bin/env python3
"""Write deterministic sample AWS CloudTrail logs for tarn.

The output imitates CloudTrail's S3 delivery: gzip-compressed JSON documents of the form
``{"Records": [...]}``, one region per file, named
``<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz``.

Six hours of made-up activity in account 123456789012 starting 2026-11-20T00:00:00Z: people
using the console and the CLI, Terraform, a GitHub Actions role, Lambda functions reading and
writing S3, AWS services acting on their own. A few suspicious events are planted at fixed times
(see README.md). Also writes ``bad_lines.ndjson``: one record per line, three of them broken.

Everything comes from one seeded random generator and gzip headers carry mtime 0, so running
the script twice writes byte-identical files. Standard library only:

    python samples/aws_cloudtrail/generate.py
"""

from __future__ import annotations

import gzip
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261120
BASE = datetime(2026, 11, 20, tzinfo=UTC)
SPAN = 6 * 3600  # seconds of activity after BASE
ACCOUNT = "123456789012"
HOME = "us-east-1"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TOTAL_RECORDS = 1200
OUT_DIR = Path(__file__).resolve().parent

B32 = string.ascii_uppercase + "234567"
ALNUM = string.ascii_letters + string.digits
B64 = string.ascii_letters + string.digits + "+/"
HEX = "0123456789abcdef"

Json = dict[str, Any]


# --------------------------------------------------------------------------- formatting


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock12(t: datetime) -> str:
    hour = t.hour % 12 or 12
    return f"{hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"


def sts_date(t: datetime) -> str:
    """STS writes expirations like 'Nov 20, 2026, 1:05:00 AM'."""
    return f"{t:%b} {t.day}, {t.year}, {_clock12(t)}"


def iam_date(t: datetime) -> str:
    """IAM writes dates like 'Nov 20, 2026 1:05:00 AM'."""
    return f"{t:%b} {t.day}, {t.year} {_clock12(t)}"


def lambda_date(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


# --------------------------------------------------------------------------- randomness


class Rand:
    """All randomness goes through one seeded random.Random."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def hexid(self, n: int) -> str:
        return self.chars(HEX, n)

    def access_key(self, prefix: str) -> str:
        return prefix + self.chars(B32, 16)

    def unique_id(self, prefix: str) -> str:
        return prefix + self.chars(B32, 17)

    def s3_request_id(self) -> str:
        return self.chars("0123456789ABCDEF", 16)

    def amz_id2(self) -> str:
        return self.chars(B64, 76)

    def session_token(self) -> str:
        return (
            "IQoJb3JpZ2luX2VjE"
            + self.chars(B64, 3)
            + "aCXVzLWVhc3QtMSJHMEUCI"
            + self.chars(B64, 180)
        )

    def choice(self, seq: Any) -> Any:
        return self.r.choice(seq)

    def weighted(self, items: list[tuple[Any, float]]) -> Any:
        values = [v for v, _ in items]
        weights = [w for _, w in items]
        return self.r.choices(values, weights=weights, k=1)[0]

    def randint(self, a: int, b: int) -> int:
        return self.r.randint(a, b)

    def random(self) -> float:
        return self.r.random()


# --------------------------------------------------------------------------- the account

OFFICE_IP = "216.160.83.56"
ALICE_HOME_IP = "81.2.69.142"
BOB_HOME_IP = "89.160.20.128"
CAROL_IP = "2.125.160.216"
ROOT_LOGIN_IP = "67.43.156.12"
BRUTE_FORCE_IP = "175.16.199.37"
DEPLOY_BOT_IP = "3.91.124.55"
BASTION_IP = "18.207.44.3"
GITHUB_RUNNER_IPS = ("20.57.79.80", "20.115.32.161", "4.246.133.21")
LAMBDA_EGRESS_IPS = {
    "us-east-1": ("44.201.12.90", "3.236.77.140"),
    "us-west-2": ("35.88.141.7", "52.12.203.66"),
    "eu-west-1": ("52.49.201.17", "34.245.18.6"),
}

BUCKET_RAW = {r: f"tarn-raw-{ACCOUNT}-{r}" for r in REGIONS}
BUCKET_LAKE = {r: f"tarn-lake-{ACCOUNT}-{r}" for r in REGIONS}
BUCKET_ARTIFACTS = f"tarn-artifacts-{ACCOUNT}"
BUCKET_TFSTATE = f"tarn-tfstate-{ACCOUNT}"
BUCKET_EXPORTS = f"tarn-exports-{ACCOUNT}"
BUCKET_SCRATCH = f"tarn-dev-scratch-{ACCOUNT}"
BUCKET_AUDIT = f"tarn-audit-archive-{ACCOUNT}"
BUCKET_TRAIL = f"aws-cloudtrail-logs-{ACCOUNT}-3f9a1c2e"
BUCKET_REGION: dict[str, str] = {
    **{b: r for r, b in BUCKET_RAW.items()},
    **{b: r for r, b in BUCKET_LAKE.items()},
    BUCKET_ARTIFACTS: HOME,
    BUCKET_TFSTATE: HOME,
    BUCKET_EXPORTS: "us-west-2",
    BUCKET_SCRATCH: "us-west-2",
    BUCKET_AUDIT: HOME,
    BUCKET_TRAIL: HOME,
}
# Buckets Terraform reads; those without a bucket policy answer NoSuchBucketPolicy.
TF_BUCKETS = [
    *BUCKET_RAW.values(),
    *BUCKET_LAKE.values(),
    BUCKET_ARTIFACTS,
    BUCKET_EXPORTS,
    BUCKET_AUDIT,
    BUCKET_TRAIL,
]
BUCKETS_WITH_POLICY = {BUCKET_TRAIL, BUCKET_AUDIT, *BUCKET_RAW.values()}

TRAIL_NAME = "management-events"
TRAIL_ARN = f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/{TRAIL_NAME}"
OIDC_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
GITHUB_SUBJECT = "repo:example-org/tarn-infra:ref:refs/heads/main"

ROLE_NAMES = [
    "tarn-ingest-role",
    "github-actions-deploy",
    "developer",
    "bastion-instance-role",
    "tarn-detector-role",
    "tarn-alert-forwarder-role",
]
CUSTOMER_POLICIES = [
    "tarn-ingest-s3-access",
    "tarn-kms-use",
    "tarn-deploy-lambda",
    "tarn-detector-read-lake",
]
LAMBDA_FUNCTIONS = {
    "us-east-1": ["tarn-ingest", "tarn-detector", "tarn-alert-forwarder"],
    "us-west-2": ["tarn-ingest"],
    "eu-west-1": ["tarn-ingest"],
}

BROWSER_UA = {
    "alice": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "bob": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "carol": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "attacker": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "root": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
}
S3_CONSOLE_UA = (
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 "
    "Linux/5.10.228-198.886.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/17.0.13+11-LTS "
    "java/17.0.13 kotlin/1.3.72 vendor/Amazon.com_Inc. cfg/retry-mode/standard]"
)


def cli_ua(os_part: str, command: str) -> str:
    return (
        f"aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 {os_part} lang/python#3.12.6 "
        f"md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off "
        f"md/command#{command}"
    )


# The `md/command#...` part of an AWS CLI user agent, by eventName.
CLI_COMMANDS = {
    "AssumeRole": "sts.assume-role",
    "GetCallerIdentity": "sts.get-caller-identity",
    "ListBuckets": "s3.ls",
    "ListObjects": "s3.ls",
    "GetObject": "s3.cp",
    "PutObject": "s3.cp",
    "GetBucketPolicy": "s3api.get-bucket-policy",
    "GetBucketLocation": "s3api.get-bucket-location",
    "DescribeInstances": "ec2.describe-instances",
    "DescribeSecurityGroups": "ec2.describe-security-groups",
    "DescribeVpcs": "ec2.describe-vpcs",
    "DescribeSubnets": "ec2.describe-subnets",
    "DescribeVolumes": "ec2.describe-volumes",
    "DescribeInstanceStatus": "ec2.describe-instance-status",
    "DescribeAddresses": "ec2.describe-addresses",
    "DescribeTags": "ec2.describe-tags",
    "ListFunctions20150331": "lambda.list-functions",
    "GetFunction20150331v2": "lambda.get-function",
    "GetFunctionConfiguration20150331v2": "lambda.get-function-configuration",
    "UpdateFunctionCode20150331v2": "lambda.update-function-code",
    "Invoke": "lambda.invoke",
    "ListUsers": "iam.list-users",
    "CreateAccessKey": "iam.create-access-key",
    "AttachUserPolicy": "iam.attach-user-policy",
    "StopLogging": "cloudtrail.stop-logging",
    "DeleteTrail": "cloudtrail.delete-trail",
    "Decrypt": "kms.decrypt",
    "ListKeys": "kms.list-keys",
    "ListAliases": "kms.list-aliases",
    "DescribeKey": "kms.describe-key",
    "GetKeyRotationStatus": "kms.get-key-rotation-status",
    "GetKeyPolicy": "kms.get-key-policy",
}

BOB_OS = "os/linux#6.11.6-arch1-1 md/arch#x86_64"
ALICE_OS = "os/macos#24.1.0 md/arch#arm64"
BASTION_OS = "os/linux#6.1.115-126.197.amzn2023.x86_64 md/arch#x86_64 md/distrib#amzn.2023"
RUNNER_OS = "os/linux#6.5.0-1025-azure md/arch#x86_64 md/distrib#ubuntu.22"

SDK_VERSIONS = {
    "iam": "1.38.1",
    "s3": "1.67.0",
    "ec2": "1.187.1",
    "kms": "1.37.5",
    "lambda": "1.66.0",
    "cloudtrail": "1.46.1",
    "sts": "1.32.4",
}


def terraform_ua(svc: str) -> str:
    return (
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) "
        "terraform-provider-aws/5.76.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
        "aws-sdk-go-v2/1.32.4 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 "
        f"api/{svc}#{SDK_VERSIONS[svc]}"
    )


GITHUB_UA = (
    "aws-sdk-js/3.687.0 ua/2.1 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.18.0 "
    "api/sts#3.687.0 m/E,N configure-aws-credentials-for-github-actions"
)
LAMBDA_UA = (
    "Boto3/1.35.60 md/Botocore#1.35.60 ua/2.0 os/linux#5.10.227-239.884.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.35.60"
)


def svc_of(source: str) -> str:
    return source.split(".", 1)[0]


def service_host(svc: str, region: str) -> str:
    if svc in ("iam",):
        return "iam.amazonaws.com"
    if svc == "signin":
        return "signin.aws.amazon.com"
    return f"{svc}.{region}.amazonaws.com"


# --------------------------------------------------------------------------- principals


@dataclass
class User:
    name: str
    principal_id: str
    access_key: str  # long-term AKIA key used from the CLI / SDKs

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/{self.name}"


@dataclass
class Role:
    name: str
    role_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.name}"


@dataclass
class Caller:
    """Who makes a call, from where, with what client."""

    identity: Json
    ip: str
    ua: Callable[[str, str], str]  # (service, eventName) -> user agent
    console: bool = False
    tls: bool = True

    def user_agent(self, svc: str, name: str) -> str:
        ua = self.ua(svc, name)
        if svc == "s3" and not ua.startswith("["):
            return f"[{ua}]"
        return ua


def iam_user_identity(
    user: User, access_key: str | None, console_since: datetime | None = None, mfa: bool = True
) -> Json:
    d: Json = {
        "type": "IAMUser",
        "principalId": user.principal_id,
        "arn": user.arn,
        "accountId": ACCOUNT,
        "accessKeyId": access_key if access_key is not None else "",
        "userName": user.name,
    }
    if console_since is not None:
        d["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {
                "creationDate": iso(console_since),
                "mfaAuthenticated": "true" if mfa else "false",
            },
        }
    return d


@dataclass
class RoleSession:
    role: Role
    name: str
    access_key: str
    created: datetime
    web_identity: bool = False
    ec2: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role.name}/{self.name}"

    def identity(self, invoked_by: str | None = None) -> Json:
        ctx: Json = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": self.role.role_id,
                "arn": self.role.arn,
                "accountId": ACCOUNT,
                "userName": self.role.name,
            },
            "webIdFederationData": (
                {"federatedProvider": OIDC_PROVIDER, "attributes": {}} if self.web_identity else {}
            ),
            "attributes": {"creationDate": iso(self.created), "mfaAuthenticated": "false"},
        }
        if self.ec2:
            ctx["ec2RoleDelivery"] = "2.0"
        d: Json = {
            "type": "AssumedRole",
            "principalId": f"{self.role.role_id}:{self.name}",
            "arn": self.arn,
            "accountId": ACCOUNT,
            "accessKeyId": self.access_key,
            "sessionContext": ctx,
        }
        if invoked_by:
            d["invokedBy"] = invoked_by
        return d


def aws_service_identity(service: str) -> Json:
    return {"type": "AWSService", "invokedBy": service}


# --------------------------------------------------------------------------- the generator


@dataclass
class Generator:
    rnd: Rand
    records: list[Json] = field(default_factory=list)

    def __post_init__(self) -> None:
        rnd = self.rnd
        self.users = {
            n: User(n, rnd.unique_id("AIDA"), rnd.access_key("AKIA"))
            for n in ("alice", "bob", "carol", "deploy-bot")
        }
        self.roles = {n: Role(n, rnd.unique_id("AROA")) for n in ROLE_NAMES}
        self.lake_keys = {r: rnd.uuid4() for r in REGIONS}
        self.trail_key = rnd.uuid4()
        self.vpc = {r: "vpc-" + rnd.hexid(17) for r in REGIONS}
        self.subnets = {r: ["subnet-" + rnd.hexid(17) for _ in range(3)] for r in REGIONS}
        self.instances = {r: ["i-" + rnd.hexid(17) for _ in range(4)] for r in REGIONS}
        self.bastion_instance = self.instances[HOME][0]
        self.code_sha = {f: rnd.chars(B64, 43) + "=" for f in LAMBDA_FUNCTIONS[HOME]}
        self.lambda_sessions: dict[str, list[RoleSession]] = {r: [] for r in REGIONS}
        self.bastion_sessions: list[RoleSession] = []

    # ---- helpers ---------------------------------------------------------------------

    def key_arn(self, region: str) -> str:
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/{self.lake_keys[region]}"

    def trail_key_arn(self) -> str:
        return f"arn:aws:kms:{HOME}:{ACCOUNT}:key/{self.trail_key}"

    def tls(self, host: str) -> Json:
        if self.rnd.random() < 0.8:
            return {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": host,
            }
        return {
            "tlsVersion": "TLSv1.2",
            "cipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "clientProvidedHostHeader": host,
        }

    def record(
        self,
        t: datetime,
        identity: Json,
        source: str,
        name: str,
        region: str,
        ip: str,
        ua: str,
        req: Json | None,
        resp: Json | None = None,
        *,
        readonly: bool,
        error: tuple[str | None, str] | None = None,
        additional: Json | None = None,
        resources: list[Json] | None = None,
        event_type: str = "AwsApiCall",
        data_event: bool = False,
        request_id: str | bool | None = True,
        tls_host: str | None = None,
        console: bool = False,
        shared_event_id: bool = False,
        service_details: Json | None = None,
        api_version: str | None = None,
        vpc_endpoint: str | None = None,
    ) -> Json:
        svc = svc_of(source)
        version = "1.09" if svc in ("s3", "sts", "kms", "lambda") else "1.08"
        rec: Json = {
            "eventVersion": version,
            "userIdentity": identity,
            "eventTime": iso(t),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": ua,
        }
        if error is not None:
            code, message = error
            if code is not None:
                rec["errorCode"] = code
            rec["errorMessage"] = message
        rec["requestParameters"] = req
        rec["responseElements"] = resp
        if additional is not None:
            rec["additionalEventData"] = additional
        if request_id is True:
            rec["requestID"] = self.rnd.s3_request_id() if svc == "s3" else self.rnd.uuid4()
        elif isinstance(request_id, str):
            rec["requestID"] = request_id
        rec["eventID"] = self.rnd.uuid4()
        rec["readOnly"] = readonly
        if resources is not None:
            rec["resources"] = resources
        rec["eventType"] = event_type
        if api_version is not None:
            rec["apiVersion"] = api_version
        rec["managementEvent"] = not data_event
        rec["recipientAccountId"] = ACCOUNT
        if service_details is not None:
            rec["serviceEventDetails"] = service_details
        if shared_event_id:
            rec["sharedEventID"] = self.rnd.uuid4()
        if vpc_endpoint is not None:
            rec["vpcEndpointId"] = vpc_endpoint
            rec["vpcEndpointAccountId"] = ACCOUNT
        rec["eventCategory"] = "Data" if data_event else "Management"
        if tls_host is not None:
            rec["tlsDetails"] = self.tls(tls_host)
        if console:
            rec["sessionCredentialFromConsole"] = "true"
        self.records.append(rec)
        return rec

    def call(
        self,
        t: datetime,
        caller: Caller,
        region: str,
        source: str,
        name: str,
        req: Json | None = None,
        resp: Json | None = None,
        *,
        readonly: bool = True,
        error: tuple[str | None, str] | None = None,
        resources: list[Json] | None = None,
        additional: Json | None = None,
        data_event: bool = False,
        api_version: str | None = None,
        identity: Json | None = None,
        ip: str | None = None,
        ua: str | None = None,
        tls: bool | None = None,
        vpc_endpoint: str | None = None,
    ) -> Json:
        """An API call by `caller`; fills in the service-specific boilerplate."""
        svc = svc_of(source)
        if svc == "s3":
            host = (req or {}).get("Host") or f"s3.{region}.amazonaws.com"
            base = {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": self.rnd.amz_id2(),
                "bytesTransferredOut": 0,
            }
            if additional:
                base.update(additional)
            additional = base
        else:
            host = service_host(svc, region)
        if svc == "lambda" and api_version is None:
            api_version = "2015-03-31"
        use_tls = caller.tls if tls is None else tls
        return self.record(
            t,
            identity if identity is not None else caller.identity,
            source,
            name,
            region,
            ip or caller.ip,
            ua or caller.user_agent(svc, name),
            req,
            resp,
            readonly=readonly,
            error=error,
            additional=additional,
            resources=resources,
            data_event=data_event,
            tls_host=host if use_tls else None,
            console=caller.console,
            api_version=api_version,
            vpc_endpoint=vpc_endpoint,
        )

    # ---- S3 --------------------------------------------------------------------------

    @staticmethod
    def s3_req(bucket: str, **extra: Any) -> Json:
        region = BUCKET_REGION[bucket]
        return {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", **extra}

    @staticmethod
    def bucket_resource(bucket: str) -> Json:
        return {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}

    def s3_object_call(
        self,
        t: datetime,
        caller: Caller,
        name: str,
        bucket: str,
        key: str,
        *,
        size: int,
        error: tuple[str, str] | None = None,
        kms: bool = True,
        **kw: Any,
    ) -> Json:
        region = BUCKET_REGION[bucket]
        req = self.s3_req(bucket, key=key)
        resp: Json | None = None
        extra: Json = {}
        if name == "PutObject":
            req = {"bucketName": bucket, "Host": req["Host"], "key": key}
            if kms:
                req["x-amz-server-side-encryption"] = "aws:kms"
                req["x-amz-server-side-encryption-aws-kms-key-id"] = self.key_arn(region)
                resp = {
                    "x-amz-server-side-encryption": "aws:kms",
                    "x-amz-server-side-encryption-aws-kms-key-id": self.key_arn(region),
                    "x-amz-server-side-encryption-bucket-key-enabled": "false",
                }
            else:
                resp = {"x-amz-server-side-encryption": "AES256"}
            resp["x-amz-version-id"] = self.rnd.chars(ALNUM + "._", 32)
            extra["bytesTransferredIn"] = size
        elif error is None:
            extra["bytesTransferredOut"] = size
        if error is not None:
            resp = None
        return self.call(
            t,
            caller,
            region,
            "s3.amazonaws.com",
            name,
            req,
            resp,
            readonly=name in ("GetObject", "HeadObject", "ListObjects"),
            error=error,
            additional=extra,
            data_event=True,
            resources=[
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                self.bucket_resource(bucket),
            ],
            **kw,
        )

    def s3_bucket_call(
        self,
        t: datetime,
        caller: Caller,
        name: str,
        bucket: str,
        sub: str | None,
        *,
        error: tuple[str, str] | None = None,
        data_event: bool = False,
        readonly: bool = True,
        extra_req: Json | None = None,
    ) -> Json:
        req = self.s3_req(bucket)
        if sub is not None:
            req[sub] = ""
        if extra_req:
            req.update(extra_req)
        return self.call(
            t,
            caller,
            BUCKET_REGION[bucket],
            "s3.amazonaws.com",
            name,
            req,
            None,
            readonly=readonly,
            error=error,
            data_event=data_event,
            additional=(
                {"bytesTransferredIn": len(json.dumps(extra_req or {})), "bytesTransferredOut": 0}
                if not readonly
                else {"bytesTransferredOut": 0 if error else self.rnd.randint(200, 4000)}
            ),
            resources=[self.bucket_resource(bucket)],
        )

    def list_buckets(self, t: datetime, caller: Caller, region: str = HOME) -> Json:
        return self.call(
            t,
            caller,
            region,
            "s3.amazonaws.com",
            "ListBuckets",
            {"Host": f"s3.{region}.amazonaws.com"},
            additional={"bytesTransferredOut": self.rnd.randint(2000, 3500)},
        )

    # ---- KMS -------------------------------------------------------------------------

    def kms_via_s3(
        self, t: datetime, session: RoleSession, name: str, bucket: str, key: str
    ) -> Json:
        """KMS call S3 makes for a caller reading or writing an SSE-KMS object."""
        region = BUCKET_REGION[bucket]
        req: Json = {"encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{bucket}/{key}"}}
        if name == "Decrypt":
            req = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", **req}
        else:
            req = {"keyId": self.key_arn(region), **req, "keySpec": "AES_256"}
        return self.record(
            t,
            session.identity(invoked_by="s3.amazonaws.com"),
            "kms.amazonaws.com",
            name,
            region,
            "s3.amazonaws.com",
            "s3.amazonaws.com",
            req,
            None,
            readonly=True,
            resources=[
                {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": self.key_arn(region)}
            ],
        )

    # ---- STS -------------------------------------------------------------------------

    def credentials(self, access_key: str, expires: datetime) -> Json:
        return {
            "accessKeyId": access_key,
            "sessionToken": self.rnd.session_token(),
            "expiration": sts_date(expires),
        }

    def service_assume_role(
        self,
        t: datetime,
        service: str,
        role: Role,
        session_name: str,
        region: str,
        ec2: bool = False,
    ) -> RoleSession:
        session = RoleSession(role, session_name, self.rnd.access_key("ASIA"), t, ec2=ec2)
        self.record(
            t,
            aws_service_identity(service),
            "sts.amazonaws.com",
            "AssumeRole",
            region,
            service,
            service,
            {"roleArn": role.arn, "roleSessionName": session_name},
            {
                "credentials": self.credentials(
                    session.access_key, t + timedelta(hours=6 if ec2 else 12)
                )
            },
            readonly=True,
            resources=[{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role.arn}],
            shared_event_id=True,
        )
        return session

    def user_assume_role(
        self, t: datetime, caller: Caller, role: Role, session_name: str, region: str = HOME
    ) -> RoleSession:
        session = RoleSession(role, session_name, self.rnd.access_key("ASIA"), t)
        self.call(
            t,
            caller,
            region,
            "sts.amazonaws.com",
            "AssumeRole",
            {"roleArn": role.arn, "roleSessionName": session_name, "durationSeconds": 3600},
            {
                "credentials": self.credentials(session.access_key, t + timedelta(hours=1)),
                "assumedRoleUser": {
                    "assumedRoleId": f"{role.role_id}:{session_name}",
                    "arn": session.arn,
                },
            },
            resources=[{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role.arn}],
        )
        return session

    def get_caller_identity(self, t: datetime, caller: Caller, region: str = HOME) -> Json:
        return self.call(t, caller, region, "sts.amazonaws.com", "GetCallerIdentity")

    # ---- sign-in ---------------------------------------------------------------------

    def console_login(
        self,
        t: datetime,
        identity: Json,
        ip: str,
        ua: str,
        *,
        success: bool,
        mfa: bool,
        mfa_arn: str | None = None,
    ) -> Json:
        additional: Json = {
            "LoginTo": (
                "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true"
                f"&state=hashArgsFromTB_{HOME}_{self.rnd.hexid(16)}"
            ),
            "MobileVersion": "No",
        }
        if mfa_arn and mfa:
            additional["MFAIdentifier"] = mfa_arn
        additional["MFAUsed"] = "Yes" if mfa else "No"
        return self.record(
            t,
            identity,
            "signin.amazonaws.com",
            "ConsoleLogin",
            HOME,
            ip,
            ua,
            None,
            {"ConsoleLogin": "Success" if success else "Failure"},
            readonly=False,
            error=None if success else (None, "Failed authentication"),
            additional=additional,
            event_type="AwsConsoleSignIn",
            request_id=None,
            tls_host="signin.aws.amazon.com",
        )

    # ---- catalogues of everyday calls ------------------------------------------------

    def ec2_read(
        self,
        t: datetime,
        caller: Caller,
        region: str,
        *,
        console: bool = False,
        error: tuple[str, str] | None = None,
    ) -> Json:
        rnd = self.rnd
        choice = rnd.weighted(
            [
                ("DescribeInstances", 5),
                ("DescribeSecurityGroups", 2),
                ("DescribeVpcs", 1),
                ("DescribeSubnets", 1),
                ("DescribeVolumes", 1),
                ("DescribeInstanceStatus", 1),
                ("DescribeAddresses", 1),
            ]
        )
        req: Json
        if choice == "DescribeInstances":
            req = {"instancesSet": {}, "filterSet": {}}
            if console:
                req["maxResults"] = 1000
            elif rnd.random() < 0.4:
                req = {
                    "instancesSet": {"items": [{"instanceId": rnd.choice(self.instances[region])}]},
                    "filterSet": {},
                }
        elif choice == "DescribeSecurityGroups":
            req = {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}
        elif choice == "DescribeVpcs":
            req = {"vpcSet": {}, "filterSet": {}}
        elif choice == "DescribeSubnets":
            req = {
                "subnetSet": {},
                "filterSet": {
                    "items": [
                        {"name": "vpc-id", "valueSet": {"items": [{"value": self.vpc[region]}]}}
                    ]
                },
            }
        elif choice == "DescribeVolumes":
            req = {"volumeSet": {}, "filterSet": {}}
        elif choice == "DescribeInstanceStatus":
            req = {"instancesSet": {}, "filterSet": {}, "includeAllInstances": True}
        else:
            req = {"publicIpsSet": {}, "allocationIdsSet": {}, "filterSet": {}}
        return self.call(t, caller, region, "ec2.amazonaws.com", choice, req, error=error)

    def iam_read(self, t: datetime, caller: Caller, *, who: str) -> Json:
        rnd = self.rnd
        name = rnd.weighted(
            [
                ("ListUsers", 3),
                ("GetAccountSummary", 2),
                ("ListRoles", 2),
                ("GetUser", 2),
                ("ListAccessKeys", 2),
                ("ListMFADevices", 1),
                ("ListPolicies", 1),
                ("ListGroupsForUser", 1),
                ("GetAccountPasswordPolicy", 1),
                ("ListAttachedUserPolicies", 1),
            ]
        )
        user = rnd.choice(["alice", "bob", "carol", "deploy-bot", who])
        req: Json | None = {
            "ListUsers": None,
            "GetAccountSummary": None,
            "GetAccountPasswordPolicy": None,
            "ListRoles": {"maxItems": 1000},
            "ListPolicies": {"scope": "Local", "onlyAttached": False, "maxItems": 1000},
        }.get(name, {"userName": user})
        return self.call(t, caller, HOME, "iam.amazonaws.com", name, req)

    def cloudtrail_read(self, t: datetime, caller: Caller, region: str) -> Json:
        name = self.rnd.weighted(
            [
                ("LookupEvents", 4),
                ("DescribeTrails", 2),
                ("GetTrailStatus", 2),
                ("GetEventSelectors", 1),
                ("ListTrails", 1),
            ]
        )
        req: Json | None
        if name == "LookupEvents":
            attr = self.rnd.choice(
                [
                    ("ReadOnly", "false"),
                    ("EventName", "ConsoleLogin"),
                    ("Username", "deploy-bot"),
                    ("EventSource", "iam.amazonaws.com"),
                ]
            )
            req = {
                "maxResults": 50,
                "lookupAttributes": [{"attributeKey": attr[0], "attributeValue": attr[1]}],
            }
        elif name == "DescribeTrails":
            req = {"trailNameList": [], "includeShadowTrails": True}
        elif name == "GetTrailStatus":
            req = {"name": TRAIL_ARN}
        elif name == "GetEventSelectors":
            req = {"trailName": TRAIL_ARN}
        else:
            req = None
        return self.call(t, caller, region, "cloudtrail.amazonaws.com", name, req)

    def kms_read(self, t: datetime, caller: Caller, region: str) -> Json:
        name = self.rnd.weighted(
            [
                ("ListKeys", 2),
                ("ListAliases", 2),
                ("DescribeKey", 3),
                ("GetKeyRotationStatus", 1),
                ("GetKeyPolicy", 1),
            ]
        )
        key_arn = self.key_arn(region)
        resources = None
        if name == "ListKeys":
            req: Json | None = {"limit": 1000}
        elif name == "ListAliases":
            req = {"limit": 100}
        else:
            req = {"keyId": key_arn}
            if name == "GetKeyPolicy":
                req["policyName"] = "default"
            resources = [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}]
        return self.call(t, caller, region, "kms.amazonaws.com", name, req, resources=resources)

    def lambda_read(self, t: datetime, caller: Caller, region: str) -> Json:
        fn = self.rnd.choice(LAMBDA_FUNCTIONS[region])
        name = self.rnd.weighted(
            [
                ("ListFunctions20150331", 2),
                ("GetFunction20150331v2", 3),
                ("GetFunctionConfiguration20150331v2", 1),
            ]
        )
        req: Json | None = None if name == "ListFunctions20150331" else {"functionName": fn}
        return self.call(t, caller, region, "lambda.amazonaws.com", name, req)

    def console_read(self, t: datetime, caller: Caller, who: str) -> Json:
        region = self.rnd.weighted([(HOME, 6), ("us-west-2", 2), ("eu-west-1", 2)])
        kind = self.rnd.weighted(
            [("ec2", 4), ("iam", 3), ("cloudtrail", 3), ("kms", 1), ("s3", 3), ("lambda", 2)]
        )
        if kind == "ec2":
            return self.ec2_read(t, caller, region, console=True)
        if kind == "iam":
            return self.iam_read(t, caller, who=who)
        if kind == "cloudtrail":
            return self.cloudtrail_read(t, caller, region)
        if kind == "kms":
            return self.kms_read(t, caller, region)
        if kind == "lambda":
            return self.lambda_read(t, caller, region)
        op = self.rnd.weighted(
            [
                ("ListBuckets", 3),
                ("GetBucketLocation", 2),
                ("GetBucketPolicyStatus", 1),
                ("GetBucketPublicAccessBlock", 1),
                ("GetBucketAcl", 1),
            ]
        )
        if op == "ListBuckets":
            return self.list_buckets(t, caller)
        bucket = self.rnd.choice(TF_BUCKETS)
        sub = {
            "GetBucketLocation": "location",
            "GetBucketPolicyStatus": "policyStatus",
            "GetBucketPublicAccessBlock": "publicAccessBlock",
            "GetBucketAcl": "acl",
        }[op]
        return self.s3_bucket_call(t, caller, op, bucket, sub)

    # ---- callers ---------------------------------------------------------------------

    def console_caller(self, user: User, since: datetime, ip: str, mfa: bool = True) -> Caller:
        def ua(svc: str, _name: str) -> str:
            return S3_CONSOLE_UA if svc == "s3" else "AWS Internal"

        identity = iam_user_identity(user, self.rnd.access_key("ASIA"), since, mfa)
        return Caller(identity, ip, ua, console=True, tls=False)

    @staticmethod
    def cli_caller(identity: Json, ip: str, os_part: str) -> Caller:
        def ua(svc: str, name: str) -> str:
            return cli_ua(os_part, CLI_COMMANDS.get(name, f"{svc}.{name.lower()}"))

        return Caller(identity, ip, ua)

    # ---- scenario --------------------------------------------------------------------

    def at(self, seconds: int) -> datetime:
        return BASE + timedelta(seconds=seconds)

    def hms(self, h: int, m: int, s: int) -> datetime:
        return BASE + timedelta(hours=h, minutes=m, seconds=s)

    def service_background(self) -> None:
        """Things AWS services do on their own, on a schedule."""
        rnd = self.rnd
        # CloudTrail asks KMS for a data key for each log file it delivers (SSE-KMS trail).
        for region in REGIONS:
            for i in range(24):
                t = self.at(i * 900 + 240 + rnd.randint(0, 120))
                stamp = (t + timedelta(minutes=5)).strftime("%Y%m%dT%H%MZ")
                obj = (
                    f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{t:%Y/%m/%d}/"
                    f"{ACCOUNT}_CloudTrail_{region}_{stamp}_{rnd.chars(ALNUM, 16)}.json.gz"
                )
                self.record(
                    t,
                    aws_service_identity("cloudtrail.amazonaws.com"),
                    "kms.amazonaws.com",
                    "GenerateDataKey",
                    region,
                    "cloudtrail.amazonaws.com",
                    "cloudtrail.amazonaws.com",
                    {
                        "keyId": self.trail_key_arn(),
                        "encryptionContext": {
                            "aws:cloudtrail:arn": TRAIL_ARN,
                            "aws:s3:arn": f"arn:aws:s3:::{BUCKET_TRAIL}/{obj}",
                        },
                        "keySpec": "AES_256",
                    },
                    None,
                    readonly=True,
                    resources=[
                        {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": self.trail_key_arn()}
                    ],
                    shared_event_id=True,
                )
        # Lambda takes fresh credentials for the ingest function's role now and then.
        role = self.roles["tarn-ingest-role"]
        for region in REGIONS:
            t = rnd.randint(20, 90)
            while t < SPAN:
                self.lambda_sessions[region].append(
                    self.service_assume_role(
                        self.at(t), "lambda.amazonaws.com", role, "tarn-ingest", region
                    )
                )
                t += rnd.randint(2400, 3600)
        # The bastion's instance profile credentials are refreshed about hourly.
        bastion_role = self.roles["bastion-instance-role"]
        for i in range(6):
            t = self.at(i * 3600 + rnd.randint(100, 400))
            self.bastion_sessions.append(
                self.service_assume_role(
                    t, "ec2.amazonaws.com", bastion_role, self.bastion_instance, HOME, ec2=True
                )
            )
        # Automatic yearly rotation of two customer managed keys happens to fall today.
        for region, h in (("us-west-2", 2), ("eu-west-1", 4)):
            t = self.hms(h, rnd.randint(0, 59), rnd.randint(0, 59))
            self.record(
                t,
                {"accountId": ACCOUNT, "invokedBy": "kms.amazonaws.com"},
                "kms.amazonaws.com",
                "RotateKey",
                region,
                "kms.amazonaws.com",
                "kms.amazonaws.com",
                None,
                None,
                readonly=False,
                resources=[
                    {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": self.key_arn(region)}
                ],
                event_type="AwsServiceEvent",
                request_id=None,
                service_details={"keyId": self.lake_keys[region]},
            )

    def console_sessions(self) -> dict[str, list[tuple[datetime, datetime, Caller]]]:
        """Normal console sign-ins (all with MFA) and the sessions they open."""
        plan = [
            ("alice", ALICE_HOME_IP, self.hms(0, 18, 4), self.hms(2, 40, 0)),
            ("carol", CAROL_IP, self.hms(0, 58, 37), self.hms(3, 0, 0)),
            ("alice", OFFICE_IP, self.hms(3, 28, 11), self.hms(5, 50, 0)),
            ("bob", OFFICE_IP, self.hms(4, 8, 52), self.hms(4, 40, 0)),
        ]
        sessions: dict[str, list[tuple[datetime, datetime, Caller]]] = {}
        for who, ip, start, end in plan:
            user = self.users[who]
            self.console_login(
                start,
                iam_user_identity(user, None),
                ip,
                BROWSER_UA[who],
                success=True,
                mfa=True,
                mfa_arn=f"arn:aws:iam::{ACCOUNT}:mfa/{who}",
            )
            caller = self.console_caller(user, start, ip)
            sessions.setdefault(who, []).append((start + timedelta(seconds=20), end, caller))
        return sessions

    def suspicious(self, alice_console: Caller) -> None:
        rnd = self.rnd
        bob, alice, carol = self.users["bob"], self.users["alice"], self.users["carol"]
        bob_cli = self.cli_caller(iam_user_identity(bob, bob.access_key), BOB_HOME_IP, BOB_OS)
        alice_cli = self.cli_caller(iam_user_identity(alice, alice.access_key), OFFICE_IP, ALICE_OS)

        # 1. The root user signs in to the console, without MFA.
        root = {
            "type": "Root",
            "principalId": ACCOUNT,
            "arn": f"arn:aws:iam::{ACCOUNT}:root",
            "accountId": ACCOUNT,
            "accessKeyId": "",
        }
        self.console_login(
            self.hms(1, 12, 7), root, ROOT_LOGIN_IP, BROWSER_UA["root"], success=True, mfa=False
        )

        def create_access_key(t: datetime, caller: Caller, for_user: User) -> None:
            key = rnd.access_key("AKIA")
            self.call(
                t,
                caller,
                HOME,
                "iam.amazonaws.com",
                "CreateAccessKey",
                {"userName": for_user.name},
                {
                    "accessKey": {
                        "userName": for_user.name,
                        "accessKeyId": key,
                        "status": "Active",
                        "createDate": iam_date(t),
                    }
                },
                readonly=False,
            )

        # 3. Access keys: bob and alice each make one for themselves (normal), bob makes one
        # for carol (suspicious).
        create_access_key(self.hms(2, 5, 33), bob_cli, bob)
        create_access_key(self.hms(3, 2, 44), bob_cli, carol)
        create_access_key(self.hms(3, 41, 50), alice_console, alice)

        # 4. bob gives himself AdministratorAccess.
        self.call(
            self.hms(3, 9, 18),
            bob_cli,
            HOME,
            "iam.amazonaws.com",
            "AttachUserPolicy",
            {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            None,
            readonly=False,
        )

        # 6. Password guessing against carol from one address, then a success.
        attacker_ua = BROWSER_UA["attacker"]
        carol_id = {
            "type": "IAMUser",
            "principalId": carol.principal_id,
            "accountId": ACCOUNT,
            "accessKeyId": "",
            "userName": "carol",
        }
        t = self.hms(4, 31, 2)
        for gap in (0, 41, 37, 52, 44, 49):
            t += timedelta(seconds=gap)
            self.console_login(t, carol_id, BRUTE_FORCE_IP, attacker_ua, success=False, mfa=False)
        t += timedelta(seconds=43)  # 04:35:28
        self.console_login(
            t, iam_user_identity(carol, None), BRUTE_FORCE_IP, attacker_ua, success=True, mfa=False
        )
        intruder = self.console_caller(carol, t, BRUTE_FORCE_IP, mfa=False)
        # A look around from the stolen session.
        t2 = t + timedelta(seconds=25)
        self.list_buckets(t2, intruder)
        self.call(
            t2 + timedelta(seconds=31),
            intruder,
            HOME,
            "iam.amazonaws.com",
            "ListUsers",
            None,
            error=(
                "AccessDenied",
                f"User: {carol.arn} is not authorized to perform: iam:ListUsers on "
                f"resource: arn:aws:iam::{ACCOUNT}:user/ because no identity-based "
                "policy allows the iam:ListUsers action",
            ),
        )
        self.call(
            t2 + timedelta(seconds=58),
            intruder,
            HOME,
            "ec2.amazonaws.com",
            "DescribeInstances",
            {"instancesSet": {}, "filterSet": {}, "maxResults": 1000},
        )
        self.s3_bucket_call(
            t2 + timedelta(seconds=96),
            intruder,
            "GetBucketPolicyStatus",
            BUCKET_EXPORTS,
            "policyStatus",
        )
        self.s3_bucket_call(
            t2 + timedelta(seconds=130),
            intruder,
            "GetBucketPolicy",
            BUCKET_EXPORTS,
            "policy",
            error=("NoSuchBucketPolicy", "The bucket policy does not exist"),
        )

        # 5. ... and the intruder makes the exports bucket world-readable.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadGetObject",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET_EXPORTS}/*",
                }
            ],
        }
        self.s3_bucket_call(
            self.hms(4, 52, 6),
            intruder,
            "PutBucketPolicy",
            BUCKET_EXPORTS,
            "policy",
            readonly=False,
            extra_req={"bucketPolicy": policy},
        )

        # 2. alice turns the trail off, then deletes it.
        self.call(
            self.hms(5, 14, 27),
            alice_cli,
            HOME,
            "cloudtrail.amazonaws.com",
            "StopLogging",
            {"name": TRAIL_ARN},
            None,
            readonly=False,
        )
        self.call(
            self.hms(5, 16, 3),
            alice_cli,
            HOME,
            "cloudtrail.amazonaws.com",
            "DeleteTrail",
            {"name": TRAIL_NAME},
            None,
            readonly=False,
        )

    def ci_runs(self) -> None:
        """GitHub Actions deploys the Lambda functions through an OIDC role."""
        rnd = self.rnd
        role = self.roles["github-actions-deploy"]
        for start in (
            self.hms(0, 42, 10),
            self.hms(1, 55, 3),
            self.hms(2, 48, 41),
            self.hms(4, 2, 19),
            self.hms(5, 21, 55),
        ):
            ip = rnd.choice(GITHUB_RUNNER_IPS)
            session = RoleSession(
                role, "GitHubActions", rnd.access_key("ASIA"), start, web_identity=True
            )
            self.record(
                start,
                {
                    "type": "WebIdentityUser",
                    "principalId": f"{OIDC_PROVIDER}:sts.amazonaws.com:{GITHUB_SUBJECT}",
                    "userName": GITHUB_SUBJECT,
                    "identityProvider": OIDC_PROVIDER,
                },
                "sts.amazonaws.com",
                "AssumeRoleWithWebIdentity",
                HOME,
                ip,
                GITHUB_UA,
                {"roleArn": role.arn, "roleSessionName": "GitHubActions", "durationSeconds": 3600},
                {
                    "credentials": self.credentials(session.access_key, start + timedelta(hours=1)),
                    "subjectFromWebIdentityToken": GITHUB_SUBJECT,
                    "assumedRoleUser": {
                        "assumedRoleId": f"{role.role_id}:GitHubActions",
                        "arn": session.arn,
                    },
                    "provider": OIDC_PROVIDER,
                    "audience": "sts.amazonaws.com",
                },
                readonly=True,
                additional={
                    "identityProviderConnectionVerificationMethod": "IAMTrustStore",
                    "RoleSessionName": "GitHubActions",
                },
                resources=[{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role.arn}],
                tls_host=f"sts.{HOME}.amazonaws.com",
            )
            caller = self.cli_caller(session.identity(), ip, RUNNER_OS)
            t = start + timedelta(seconds=3)
            self.get_caller_identity(t, caller)
            sha = rnd.hexid(40)
            for fn in ("tarn-ingest", "tarn-detector"):
                t += timedelta(seconds=rnd.randint(8, 30))
                self.s3_object_call(
                    t,
                    caller,
                    "PutObject",
                    BUCKET_ARTIFACTS,
                    f"builds/{sha}/{fn}.zip",
                    size=rnd.randint(2_000_000, 9_000_000),
                    kms=False,
                )
            for fn, region in (("tarn-ingest", HOME), ("tarn-ingest", "eu-west-1")):
                t += timedelta(seconds=rnd.randint(3, 9))
                fn_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{fn}"
                self.call(
                    t,
                    caller,
                    region,
                    "lambda.amazonaws.com",
                    "UpdateFunctionCode20150331v2",
                    {
                        "functionName": fn,
                        "s3Bucket": BUCKET_ARTIFACTS,
                        "s3Key": f"builds/{sha}/{fn}.zip",
                        "publish": False,
                        "dryRun": False,
                    },
                    {
                        "functionName": fn,
                        "functionArn": fn_arn,
                        "runtime": "python3.12",
                        "role": self.roles["tarn-ingest-role"].arn,
                        "handler": "main.handler",
                        "codeSize": rnd.randint(2_000_000, 9_000_000),
                        "description": "",
                        "timeout": 120,
                        "memorySize": 512,
                        "lastModified": lambda_date(t),
                        "codeSha256": rnd.chars(B64, 43) + "=",
                        "version": "$LATEST",
                        "tracingConfig": {"mode": "PassThrough"},
                        "revisionId": rnd.uuid4(),
                        "state": "Active",
                        "lastUpdateStatus": "InProgress",
                        "lastUpdateStatusReason": "The function is being created.",
                        "lastUpdateStatusReasonCode": "Creating",
                        "packageType": "Zip",
                        "architectures": ["arm64"],
                        "ephemeralStorage": {"size": 512},
                        "snapStart": {"applyOn": "None", "optimizationStatus": "Off"},
                        "runtimeVersionConfig": {
                            "runtimeVersionArn": (
                                f"arn:aws:lambda:{region}::runtime:{rnd.hexid(64)}"
                            )
                        },
                        "loggingConfig": {"logFormat": "Text", "logGroup": f"/aws/lambda/{fn}"},
                    },
                    readonly=False,
                    resources=[
                        {"accountId": ACCOUNT, "type": "AWS::Lambda::Function", "ARN": fn_arn}
                    ],
                )
                t += timedelta(seconds=rnd.randint(4, 9))
                self.call(
                    t,
                    caller,
                    region,
                    "lambda.amazonaws.com",
                    "GetFunction20150331v2",
                    {"functionName": fn},
                )
                t += timedelta(seconds=rnd.randint(2, 6))
                self.invoke(t, caller, region, fn, "RequestResponse")

    def invoke(
        self,
        t: datetime,
        caller: Caller,
        region: str,
        fn: str,
        invocation_type: str,
        error: tuple[str, str] | None = None,
    ) -> Json:
        fn_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{fn}"
        return self.call(
            t,
            caller,
            region,
            "lambda.amazonaws.com",
            "Invoke",
            {"functionName": fn_arn, "invocationType": invocation_type},
            None,
            readonly=False,
            data_event=True,
            error=error,
            additional=None if error else {"functionVersion": f"{fn_arn}:$LATEST"},
            resources=[{"accountId": ACCOUNT, "type": "AWS::Lambda::Function", "ARN": fn_arn}],
        )

    def terraform_runs(self) -> None:
        """deploy-bot runs `terraform plan`: bursts of reads over every resource it manages."""
        rnd = self.rnd
        bot = self.users["deploy-bot"]
        caller = Caller(
            iam_user_identity(bot, bot.access_key), DEPLOY_BOT_IP, lambda svc, _n: terraform_ua(svc)
        )
        for start in (
            self.hms(0, 35, 12),
            self.hms(1, 47, 30),
            self.hms(2, 33, 9),
            self.hms(3, 51, 40),
            self.hms(5, 5, 26),
        ):
            t = start
            self.get_caller_identity(t, caller)
            t += timedelta(seconds=1)
            self.s3_object_call(
                t,
                caller,
                "GetObject",
                BUCKET_TFSTATE,
                "prod/terraform.tfstate",
                size=rnd.randint(380_000, 420_000),
            )
            for _ in range(38):
                t += timedelta(seconds=rnd.randint(0, 3))
                self.terraform_read(t, caller)

    def terraform_read(self, t: datetime, caller: Caller) -> Json:
        rnd = self.rnd
        region = rnd.weighted([(HOME, 5), ("us-west-2", 3), ("eu-west-1", 3)])
        kind = rnd.weighted(
            [("iam", 3), ("s3", 4), ("ec2", 3), ("kms", 1), ("lambda", 1), ("cloudtrail", 1)]
        )
        if kind == "iam":
            name = rnd.weighted(
                [
                    ("GetRole", 3),
                    ("ListRolePolicies", 2),
                    ("ListAttachedRolePolicies", 2),
                    ("GetPolicy", 2),
                    ("GetPolicyVersion", 2),
                    ("GetOpenIDConnectProvider", 1),
                ]
            )
            role = rnd.choice(ROLE_NAMES)
            policy = f"arn:aws:iam::{ACCOUNT}:policy/{rnd.choice(CUSTOMER_POLICIES)}"
            if name == "GetRole" and rnd.random() < 0.1:
                return self.call(
                    t,
                    caller,
                    HOME,
                    "iam.amazonaws.com",
                    name,
                    {"roleName": "tarn-replay-role"},
                    error=(
                        "NoSuchEntityException",
                        "The role with name tarn-replay-role cannot be found.",
                    ),
                )
            req = {
                "GetRole": {"roleName": role},
                "ListRolePolicies": {"roleName": role},
                "ListAttachedRolePolicies": {"roleName": role},
                "GetPolicy": {"policyArn": policy},
                "GetPolicyVersion": {"policyArn": policy, "versionId": f"v{rnd.randint(1, 6)}"},
                "GetOpenIDConnectProvider": {"openIDConnectProviderArn": OIDC_PROVIDER},
            }[name]
            return self.call(t, caller, HOME, "iam.amazonaws.com", name, req)
        if kind == "s3":
            bucket = rnd.choice(TF_BUCKETS)
            op = rnd.weighted(
                [
                    ("GetBucketPolicy", 2),
                    ("GetBucketVersioning", 1),
                    ("GetBucketAcl", 1),
                    ("GetBucketTagging", 1),
                    ("GetBucketEncryption", 1),
                    ("GetBucketCors", 1),
                    ("GetBucketWebsite", 1),
                    ("GetBucketLogging", 1),
                    ("GetBucketPublicAccessBlock", 1),
                ]
            )
            sub = {
                "GetBucketPolicy": "policy",
                "GetBucketVersioning": "versioning",
                "GetBucketAcl": "acl",
                "GetBucketTagging": "tagging",
                "GetBucketEncryption": "encryption",
                "GetBucketCors": "cors",
                "GetBucketWebsite": "website",
                "GetBucketLogging": "logging",
                "GetBucketPublicAccessBlock": "publicAccessBlock",
            }[op]
            error = None
            if op == "GetBucketPolicy" and bucket not in BUCKETS_WITH_POLICY:
                error = ("NoSuchBucketPolicy", "The bucket policy does not exist")
            elif op == "GetBucketCors":
                error = ("NoSuchCORSConfiguration", "The CORS configuration does not exist")
            elif op == "GetBucketWebsite":
                error = (
                    "NoSuchWebsiteConfiguration",
                    "The specified bucket does not have a website configuration",
                )
            return self.s3_bucket_call(t, caller, op, bucket, sub, error=error)
        if kind == "ec2":
            return self.ec2_read(t, caller, region)
        if kind == "kms":
            return self.kms_read(t, caller, region)
        if kind == "lambda":
            fn = rnd.choice(LAMBDA_FUNCTIONS[region])
            name = rnd.choice(
                ["GetFunction20150331v2", "ListVersionsByFunction20150331", "GetPolicy20150331v2"]
            )
            error = None
            if name == "GetPolicy20150331v2" and fn != "tarn-ingest":
                error = ("ResourceNotFoundException", "The resource you requested does not exist.")
            return self.call(
                t, caller, region, "lambda.amazonaws.com", name, {"functionName": fn}, error=error
            )
        return self.cloudtrail_read(t, caller, HOME)

    # ---- filling the day -------------------------------------------------------------

    def latest(self, sessions: list[RoleSession], t: datetime) -> RoleSession:
        best = sessions[0]
        for s in sessions:
            if s.created <= t:
                best = s
        return best

    def ingest_batch(self, t: datetime, region: str) -> int:
        """tarn-ingest reads a raw log object and writes a normalized one: 4 records."""
        rnd = self.rnd
        session = self.latest(self.lambda_sessions[region], t)
        caller = Caller(
            session.identity(), rnd.choice(LAMBDA_EGRESS_IPS[region]), lambda _s, _n: LAMBDA_UA
        )
        raw_bucket, lake_bucket = BUCKET_RAW[region], BUCKET_LAKE[region]
        stamp = t - timedelta(minutes=rnd.randint(5, 20))
        kind = rnd.choice(["vpcflowlogs", "elasticloadbalancing", "route53resolver"])
        raw_key = (
            f"AWSLogs/{ACCOUNT}/{kind}/{region}/{stamp:%Y/%m/%d}/"
            f"{ACCOUNT}_{kind}_{region}_{stamp:%Y%m%dT%H%MZ}_{rnd.hexid(8)}.log.gz"
        )
        if rnd.random() < 0.02:
            self.s3_object_call(
                t,
                caller,
                "GetObject",
                raw_bucket,
                raw_key,
                size=0,
                error=("NoSuchKey", "The specified key does not exist."),
            )
            return 1
        self.s3_object_call(
            t, caller, "GetObject", raw_bucket, raw_key, size=rnd.randint(40_000, 4_000_000)
        )
        self.kms_via_s3(t, session, "Decrypt", raw_bucket, raw_key)
        t2 = t + timedelta(seconds=rnd.randint(1, 4))
        lake_key = (
            f"warehouse/ecs/{kind}/data/dt={t2:%Y-%m-%d}/"
            f"00000-{rnd.randint(0, 99)}-{rnd.uuid4()}-00001.parquet"
        )
        self.s3_object_call(
            t2, caller, "PutObject", lake_bucket, lake_key, size=rnd.randint(20_000, 900_000)
        )
        self.kms_via_s3(t2, session, "GenerateDataKey", lake_bucket, lake_key)
        return 4

    def bob_cli(self, t: datetime, caller: Caller) -> int:
        rnd = self.rnd
        kind = rnd.weighted(
            [("s3", 5), ("ec2", 2), ("lambda", 2), ("sts", 1), ("denied", 1), ("kms", 1)]
        )
        if kind == "s3":
            op = rnd.weighted(
                [("ListBuckets", 1), ("ListObjects", 2), ("GetObject", 3), ("PutObject", 2)]
            )
            if op == "ListBuckets":
                self.list_buckets(t, caller)
            elif op == "ListObjects":
                bucket = rnd.choice([BUCKET_SCRATCH, BUCKET_LAKE[HOME]])
                self.s3_bucket_call(
                    t,
                    caller,
                    "ListObjects",
                    bucket,
                    None,
                    data_event=True,
                    extra_req={
                        "list-type": "2",
                        "prefix": "",
                        "delimiter": "/",
                        "encoding-type": "url",
                    },
                )
            elif op == "GetObject":
                bucket = rnd.choice([BUCKET_SCRATCH, BUCKET_LAKE[HOME]])
                self.s3_object_call(
                    t,
                    caller,
                    "GetObject",
                    bucket,
                    f"notebooks/q{rnd.randint(1, 40)}/results.parquet",
                    size=rnd.randint(5_000, 2_000_000),
                )
            else:
                self.s3_object_call(
                    t,
                    caller,
                    "PutObject",
                    BUCKET_SCRATCH,
                    f"notebooks/q{rnd.randint(1, 40)}/results.parquet",
                    size=rnd.randint(5_000, 2_000_000),
                    kms=False,
                )
        elif kind == "ec2":
            region = rnd.weighted([(HOME, 3), ("us-west-2", 2), ("eu-west-1", 1)])
            self.ec2_read(t, caller, region)
        elif kind == "lambda":
            if rnd.random() < 0.5:
                self.invoke(t, caller, HOME, "tarn-detector", "RequestResponse")
            else:
                self.lambda_read(t, caller, rnd.choice(REGIONS))
        elif kind == "sts":
            self.get_caller_identity(t, caller)
        elif kind == "kms":
            self.call(
                t,
                caller,
                HOME,
                "kms.amazonaws.com",
                "Decrypt",
                {
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                    "encryptionContext": {"app": "tarn", "purpose": "webhook-secret"},
                },
                resources=[
                    {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": self.key_arn(HOME)}
                ],
            )
        else:
            bob = self.users["bob"]
            if rnd.random() < 0.5:
                self.call(
                    t,
                    caller,
                    HOME,
                    "iam.amazonaws.com",
                    "ListUsers",
                    None,
                    error=(
                        "AccessDenied",
                        f"User: {bob.arn} is not authorized to perform: iam:ListUsers on "
                        f"resource: arn:aws:iam::{ACCOUNT}:user/ because no "
                        "identity-based policy allows the iam:ListUsers action",
                    ),
                )
            else:
                self.s3_object_call(
                    t,
                    caller,
                    "GetObject",
                    BUCKET_AUDIT,
                    f"exports/2026/11/{rnd.randint(1, 19):02d}/audit.json.gz",
                    size=0,
                    error=("AccessDenied", "Access Denied"),
                )
        return 1

    def developer_role(self, t: datetime, caller: Caller) -> int:
        rnd = self.rnd
        kind = rnd.weighted([("ec2", 3), ("lambda", 2), ("s3", 2), ("kms", 1)])
        region = rnd.choice(REGIONS)
        if kind == "ec2":
            self.ec2_read(t, caller, region)
        elif kind == "lambda":
            self.lambda_read(t, caller, region)
        elif kind == "s3":
            self.s3_object_call(
                t,
                caller,
                "GetObject",
                BUCKET_LAKE[region],
                f"warehouse/ecs/vpcflowlogs/metadata/{rnd.uuid4()}.metadata.json",
                size=rnd.randint(3_000, 60_000),
            )
        else:
            self.kms_read(t, caller, region)
        return 1

    def bastion(self, t: datetime) -> int:
        rnd = self.rnd
        session = self.latest(self.bastion_sessions, t)
        name = rnd.weighted(
            [
                ("DescribeTags", 3),
                ("DescribeInstances", 1),
                ("GetCallerIdentity", 1),
                ("GetObject", 2),
            ]
        )

        caller = self.cli_caller(session.identity(), BASTION_IP, BASTION_OS)
        if name == "DescribeTags":
            self.call(
                t,
                caller,
                HOME,
                "ec2.amazonaws.com",
                name,
                {
                    "filterSet": {
                        "items": [
                            {
                                "name": "resource-id",
                                "valueSet": {"items": [{"value": self.bastion_instance}]},
                            }
                        ]
                    }
                },
            )
        elif name == "DescribeInstances":
            self.call(
                t,
                caller,
                HOME,
                "ec2.amazonaws.com",
                name,
                {
                    "instancesSet": {"items": [{"instanceId": self.bastion_instance}]},
                    "filterSet": {},
                },
            )
        elif name == "GetCallerIdentity":
            self.get_caller_identity(t, caller)
        else:
            self.s3_object_call(
                t,
                caller,
                "GetObject",
                BUCKET_ARTIFACTS,
                "config/bastion/authorized_keys",
                size=rnd.randint(800, 2000),
                kms=False,
                vpc_endpoint="vpce-0c4f9e2a7b1d35e86",
            )
        return 1

    def fill(self, sessions: dict[str, list[tuple[datetime, datetime, Caller]]]) -> None:
        """Everyday activity until the day holds TOTAL_RECORDS records."""
        rnd = self.rnd
        bob = self.users["bob"]
        bob_cli = self.cli_caller(iam_user_identity(bob, bob.access_key), BOB_HOME_IP, BOB_OS)
        # bob works from the CLI between 01:30 and 05:40 and assumes the developer role thrice.
        dev_windows: list[tuple[datetime, datetime, Caller]] = []
        for start in (self.hms(1, 35, 12), self.hms(3, 12, 40), self.hms(4, 48, 5)):
            s = self.user_assume_role(start, bob_cli, self.roles["developer"], "bob")
            dev_caller = self.cli_caller(s.identity(), BOB_HOME_IP, BOB_OS)
            dev_windows.append(
                (start + timedelta(seconds=5), start + timedelta(minutes=50), dev_caller)
            )

        def within(windows: list[tuple[datetime, datetime, Caller]]) -> tuple[datetime, Caller]:
            start, end, caller = rnd.choice(windows)
            span = int((end - start).total_seconds())
            return start + timedelta(seconds=rnd.randint(0, span)), caller

        actors = [
            ("ingest", 30),
            ("bob", 16),
            ("developer", 6),
            ("alice", 14),
            ("carol", 6),
            ("bob_console", 2),
            ("bastion", 4),
        ]
        while len(self.records) < TOTAL_RECORDS:
            left = TOTAL_RECORDS - len(self.records)
            actor = rnd.weighted(actors)
            if actor == "ingest":
                if left < 4:
                    continue
                region = rnd.weighted([(HOME, 3), ("us-west-2", 4), ("eu-west-1", 4)])
                self.ingest_batch(self.at(rnd.randint(60, SPAN - 60)), region)
            elif actor == "bob":
                self.bob_cli(self.at(rnd.randint(5400, 20400)), bob_cli)
            elif actor == "developer":
                t, caller = within(dev_windows)
                self.developer_role(t, caller)
            elif actor in ("alice", "carol"):
                t, caller = within(sessions[actor])
                self.console_read(t, caller, actor)
            elif actor == "bob_console":
                t, caller = within(sessions["bob"])
                self.console_read(t, caller, "bob")
            else:
                self.bastion(self.at(rnd.randint(400, SPAN - 10)))

    def build(self) -> list[Json]:
        self.service_background()
        sessions = self.console_sessions()
        alice_second = sessions["alice"][1][2]
        self.suspicious(alice_second)
        self.ci_runs()
        self.terraform_runs()
        self.fill(sessions)
        self.records.sort(key=lambda r: r["eventTime"])  # stable: same-second order is kept
        return self.records


# --------------------------------------------------------------------------- output


def delivery_files(rnd: Rand, records: list[Json]) -> list[tuple[str, list[Json]]]:
    """Group records the way CloudTrail delivers them: one region per file.

    us-east-1 sees the global services (IAM, STS, sign-in) too, so it gets two files, split
    where the day's records are halved. A file is named after its delivery time: five minutes
    after its last event, on a five-minute boundary.
    """
    by_region: dict[str, list[Json]] = {r: [] for r in REGIONS}
    for rec in records:
        by_region[rec["awsRegion"]].append(rec)
    chunks: list[tuple[str, list[Json]]] = []
    for region in REGIONS:
        recs = by_region[region]
        if region == HOME:
            half = len(recs) // 2
            chunks += [(region, recs[:half]), (region, recs[half:])]
        else:
            chunks.append((region, recs))
    files = []
    for region, recs in chunks:
        last = datetime.strptime(recs[-1]["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        delivered = last.replace(second=0) + timedelta(minutes=5 + (-last.minute) % 5)
        name = (
            f"{ACCOUNT}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{rnd.chars(ALNUM, 16)}.json.gz"
        )
        files.append((name, recs))
    return files


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def bad_lines() -> list[str]:
    """Ten NDJSON lines, one record each; lines 3, 6 and 9 are broken."""
    g = Generator(Rand(SEED))  # same users, roles and keys as the log files ...
    g.rnd.r.seed(SEED + 1)  # ... but fresh ids from here on
    g.service_background()  # gives the ingest role its sessions
    g.records.clear()
    bob = g.users["bob"]
    bob_cli = g.cli_caller(iam_user_identity(bob, bob.access_key), BOB_HOME_IP, BOB_OS)
    t = g.hms(2, 14, 0)
    step = timedelta(seconds=17)
    g.ingest_batch(t, HOME)  # 4 records (or 1 on a NoSuchKey; this seed gives 4)
    g.get_caller_identity(t + step, bob_cli)
    g.ec2_read(t + 2 * step, bob_cli, "us-west-2")
    g.list_buckets(t + 3 * step, bob_cli)
    g.invoke(t + 4 * step, bob_cli, HOME, "tarn-detector", "RequestResponse")
    g.call(
        t + 5 * step,
        bob_cli,
        HOME,
        "iam.amazonaws.com",
        "ListUsers",
        None,
        error=(
            "AccessDenied",
            f"User: {bob.arn} is not authorized to perform: iam:ListUsers on resource: "
            f"arn:aws:iam::{ACCOUNT}:user/ because no identity-based policy allows the "
            "iam:ListUsers action",
        ),
    )
    g.console_login(
        t + 6 * step,
        iam_user_identity(g.users["alice"], None),
        OFFICE_IP,
        BROWSER_UA["alice"],
        success=True,
        mfa=True,
        mfa_arn=f"arn:aws:iam::{ACCOUNT}:mfa/alice",
    )
    recs = g.records[:10]
    assert len(recs) == 10, len(recs)
    lines = [dumps(r) for r in recs]
    lines[2] = lines[2][: len(lines[2]) * 3 // 5]  # cut off mid-record
    lines[5] = dumps([recs[5]])  # valid JSON, but an array
    recs[8]["eventTime"] = "not-a-time"
    lines[8] = dumps(recs[8])
    return lines


def main() -> None:
    rnd = Rand(SEED)
    records = Generator(rnd).build()
    assert len(records) == TOTAL_RECORDS, len(records)
    for old in OUT_DIR.glob(f"{ACCOUNT}_CloudTrail_*.json.gz"):
        old.unlink()
    for name, recs in delivery_files(rnd, records):
        body = dumps({"Records": recs}).encode()
        (OUT_DIR / name).write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
        print(f"{name}: {len(recs)} records")
    (OUT_DIR / "bad_lines.ndjson").write_text("\n".join(bad_lines()) + "\n", encoding="utf-8")
    print("bad_lines.ndjson: 10 lines (3 bad)")


if __name__ == "__main__":
    main()
