"""MinIO, built from source with the Go toolchain at a pinned version, cached under the cache dir."""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tarn import _proc
from tarn.services._common import (
    HOST,
    Credentials,
    Layout,
    MissingPrerequisiteError,
    Progress,
    ServiceError,
    cache_dir,
    ensure_port_free,
    file_lock,
    human_bytes,
    run,
)

if TYPE_CHECKING:
    from minio import Minio

NAME = "minio"
MODULE = "github.com/minio/minio"
# MinIO's release tags (RELEASE.2025-...) are not semantic versions, so Go knows its commits only by
# pseudo-version. This is the newest one on the module proxy (`go list -m github.com/minio/minio@latest`)
# and it builds with Go 1.24 and newer (tested with 1.26).
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
GO_FIX = (
    "install Go 1.24 or newer (the official tarball from the Go project, or your distribution's "
    "golang package if it is recent enough) and make sure `go` is on PATH or in /usr/local/go/bin"
)


@dataclass(frozen=True)
class NatsTarget:
    """MinIO's NATS notification target: where MinIO publishes bucket events (JetStream, acked)."""

    target_id: str  # MinIO's id of the target: its ARN is arn:minio:sqs::<id>:nats
    address: str  # host:port of nats-server
    subject: str
    queue_dir: Path  # events wait here (on disk) while NATS is unreachable

    @property
    def arn(self) -> str:
        return f"arn:minio:sqs::{self.target_id}:nats"

    def env(self) -> dict[str, str]:
        """MinIO's environment variables for this target (the `_<ID>` suffix names the target)."""
        suffix = f"_{self.target_id}"
        return {
            f"MINIO_NOTIFY_NATS_ENABLE{suffix}": "on",
            f"MINIO_NOTIFY_NATS_ADDRESS{suffix}": self.address,
            f"MINIO_NOTIFY_NATS_SUBJECT{suffix}": self.subject,
            f"MINIO_NOTIFY_NATS_JETSTREAM{suffix}": "on",
            f"MINIO_NOTIFY_NATS_QUEUE_DIR{suffix}": str(self.queue_dir),
        }


def binary_path() -> Path:
    return cache_dir() / "bin" / f"minio-{VERSION}"


def go_dir() -> Path:
    return cache_dir() / "go"


def _go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    for candidate in (Path("/usr/local/go/bin/go"), Path.home() / "go" / "bin" / "go"):
        if candidate.exists():
            return str(candidate)
    return None


def ensure_binary(progress: Progress) -> tuple[Path, float]:
    """The MinIO binary for VERSION (building it on first use), and seconds spent building."""
    target = binary_path()
    if target.exists():
        return target, 0.0
    with file_lock(cache_dir() / "locks" / "minio.lock"):
        if target.exists():
            return target, 0.0
        go = _go()
        if go is None:
            raise MissingPrerequisiteError(
                f"MinIO {VERSION} is not built yet and the Go toolchain (`go`) is missing", GO_FIX
            )
        gdir = go_dir()
        gobin = gdir / "bin"
        env = {
            **os.environ,
            "GOPATH": str(gdir),
            "GOMODCACHE": str(gdir / "mod"),
            "GOCACHE": str(gdir / "build"),
            "GOBIN": str(gobin),
            "GOFLAGS": "-buildvcs=false",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }
        env.pop("GOWORK", None)
        gdir.mkdir(parents=True, exist_ok=True)
        log = cache_dir() / "logs" / "minio-build.log"
        progress(
            f"minio: building {MODULE}@{VERSION} with `go install` (first time only: downloads the "
            "module's dependencies and compiles, several minutes on 2 cores)"
        )
        t0 = time.monotonic()
        run(
            [go, "install", "-trimpath", "-ldflags=-s -w", f"{MODULE}@{VERSION}"],
            what=f"building MinIO {VERSION}",
            fix=(
                f"see the Go output above and {log}; a Go toolchain older than MinIO's go.mod asks for fails "
                f"here: {GO_FIX}"
            ),
            env=env,
            cwd=gdir,
            log=log,
        )
        built = gobin / "minio"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.move(str(built), tmp)
        os.replace(tmp, target)
        took = time.monotonic() - t0
        progress(f"minio: built in {took:.0f}s ({human_bytes(target.stat().st_size)}) -> {target}")
        return target, took


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/minio/health/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(
    layout: Layout,
    port: int,
    console_port: int,
    creds: Credentials,
    progress: Progress,
    notify: NatsTarget | None = None,
) -> int:
    proc = layout.managed(NAME)
    if proc.running():
        return proc.pid() or 0
    exe, _ = ensure_binary(progress)
    ensure_port_free(NAME, port, "TARN_SERVICES__MINIO_PORT")
    ensure_port_free("minio console", console_port, "TARN_SERVICES__MINIO_CONSOLE_PORT")
    data = layout.data(NAME) / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MINIO_ROOT_USER": creds.minio_user,
        "MINIO_ROOT_PASSWORD": creds.minio_password,
        "MINIO_REGION": "us-east-1",
        "MINIO_UPDATE": "off",
        "MINIO_BROWSER_LOGIN_ANIMATION": "off",
    }
    if notify is not None:
        notify.queue_dir.mkdir(parents=True, exist_ok=True)
        env.update(notify.env())
    argv = [
        str(exe),
        "server",
        str(data),
        "--address",
        f"{HOST}:{port}",
        "--console-address",
        f"{HOST}:{console_port}",
        "--quiet",
    ]
    return _proc.start(
        proc,
        argv,
        env=env,
        ready=lambda: _ready(port),
        timeout=60,
        fix=(
            f"read the log above; if port {port} or {console_port} is taken, free it or set "
            "TARN_SERVICES__MINIO_PORT / TARN_SERVICES__MINIO_CONSOLE_PORT; if the root credentials changed "
            f"since {data} was created, restore TARN_SERVICES__MINIO_USER/PASSWORD or discard the data with "
            "`tarn services down --purge`"
        ),
    )


def ensure_buckets(port: int, creds: Credentials, buckets: list[str]) -> None:
    from minio.error import S3Error

    client = _client(port, creds)
    try:
        for bucket in buckets:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
    except S3Error as exc:
        raise ServiceError(
            f"MinIO on {HOST}:{port} refused to create the buckets {buckets}: {exc}",
            "the MinIO data dir was probably created with other root credentials: restore "
            "TARN_SERVICES__MINIO_USER/PASSWORD, or discard the data with `tarn services down --purge`",
        ) from None


def _client(port: int, creds: Credentials) -> Minio:
    from minio import Minio

    return Minio(
        f"{HOST}:{port}",
        access_key=creds.minio_user,
        secret_key=creds.minio_password,
        secure=False,
        region="us-east-1",
    )


def _same_target(arn: str | None, target_id: str) -> bool:
    # MinIO may hand the ARN back with its region filled in: compare the target part only.
    parts = (arn or "").split(":")
    return len(parts) == 6 and parts[4] == target_id and parts[5] == "nats"


def ensure_notification(
    port: int,
    creds: Credentials,
    bucket: str,
    notify: NatsTarget,
    prefix: str,
    events: list[str],
    timeout: float = 20.0,
) -> str:
    """Make `bucket` send `events` on keys under `prefix` to the NATS target; other rules are kept.

    Returns "set" or "unchanged".
    """
    from minio.error import S3Error
    from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

    client = _client(port, creds)
    current = client.get_bucket_notification(bucket)
    ours = [q for q in current.queue_config_list if _same_target(q.queue, notify.target_id)]
    if (
        len(ours) == 1
        and sorted(ours[0].events) == sorted(events)
        and ours[0].prefix_filter_rule is not None
        and ours[0].prefix_filter_rule.value == prefix
        and ours[0].suffix_filter_rule is None
    ):
        return "unchanged"
    wanted = NotificationConfig(
        cloud_func_config_list=current.cloud_func_config_list,
        queue_config_list=[
            *(q for q in current.queue_config_list if not _same_target(q.queue, notify.target_id)),
            QueueConfig(
                queue=notify.arn,
                events=list(events),
                config_id="tarn-raw-ingest",
                prefix_filter_rule=PrefixFilterRule(prefix),
            ),
        ],
        topic_config_list=current.topic_config_list,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.set_bucket_notification(bucket, wanted)
            return "set"
        except S3Error as exc:
            # Right after start MinIO may not list the target yet; a MinIO started without it
            # (by an older `up`) never will.
            if exc.code != "InvalidArgument" or time.monotonic() > deadline:
                raise ServiceError(
                    f"MinIO on {HOST}:{port} refused the notification rule {notify.arn} on bucket "
                    f"{bucket}: {exc.code}: {exc.message}",
                    "MinIO must run with tarn's NATS target (MINIO_NOTIFY_NATS_*_"
                    f"{notify.target_id}); a MinIO started by an older `tarn services up` lacks it: "
                    "restart the stack with `tarn services down` and `tarn services up`",
                ) from None
            time.sleep(0.5)


def stop(layout: Layout) -> bool:
    return _proc.stop(layout.managed(NAME))
