"""Layered configuration: built-in defaults < tarn.yaml < TARN_* environment variables.

`TARN_SECTION__KEY=value` sets `section.key` (`__` nests). The result is validated once,
when it is loaded, and frozen. Secrets (tokens, keys, URLs with credentials) come from the
environment or mounted Secret files, never from a committed file.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tarn.exceptions import ConfigError

ENV_PREFIX = "TARN_"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageConfig(_Frozen):
    kind: Literal["local", "s3"] = "local"
    root: str | None = None  # local: defaults to <home>/data/objects
    endpoint: str | None = None  # s3: http(s)://host:port
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"
    raw_bucket: str = "tarn-raw"
    lake_bucket: str = "tarn-lake"


class CatalogConfig(_Frozen):
    name: str = "tarn"
    uri: str | None = None  # SQLAlchemy URL; defaults to SQLite under <home>/data
    warehouse: str | None = (
        None  # defaults to file://<home>/data/warehouse or s3://<lake_bucket>/warehouse
    )
    namespace: str = "tarn"


class NatsConfig(_Frozen):
    url: str = "nats://127.0.0.1:14222"
    stream: str = "TARN_EVENTS"
    subject_prefix: str = "tarn.events"
    dead_letter_stream: str = "TARN_DEAD_LETTER"
    dead_letter_subject: str = "tarn.deadletter"
    duplicate_window_seconds: int = 1200
    max_age_days: int = 7


class IngestConfig(_Frozen):
    url: str | None = None  # the ingestor's base URL; defaults to the local dev stack's
    token: str | None = None  # defaults to a random token kept in <home>/ingest-token
    max_body_bytes: int = 64 * 1024 * 1024
    batch_records: int = 50_000


class BrokerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = 18200
    eventing_dir: str | None = None  # defaults to the built-in eventing/ manifests
    concurrency: int = 4  # deliveries in flight per Trigger
    timeout_seconds: float = 120.0  # one delivery attempt


class TrinoConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = 8080
    user: str = "tarn"
    catalog: str = "iceberg"
    http_scheme: str = "http"


class QueryConfig(_Frozen):
    engine: Literal["duckdb", "trino"] = "duckdb"
    trino: TrinoConfig = TrinoConfig()


class DestinationConfig(_Frozen):
    """One alert destination. Which settings apply depends on its type (see tarn.destinations);
    a setting its type needs but lacks fails each delivery to it with the variable to set."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)
    type: str
    url: str | None = None  # webhook: where to POST; slack, pagerduty: the service's API endpoint
    secret: str | None = None  # webhook: HMAC-SHA256 signing key
    token: str | None = None  # slack: bot token (xoxb-); pagerduty: routing key if no routing_key
    channel: str | None = None  # slack: channel ID (C...) or #name
    reply_broadcast: bool = False  # slack: also show thread replies (updates) in the channel
    routing_key: str | None = None  # pagerduty: the Events API v2 integration key
    source: str | None = None  # pagerduty: payload.source (default "tarn")
    host: str | None = None  # email: SMTP server
    port: int | None = None  # email: default 465 with tls, 587 with starttls, else 25
    from_: str | None = Field(default=None, alias="from")  # email: sender address
    to: list[str] = Field(default_factory=list)  # email: recipients (a list or "a@x, b@y")
    username: str | None = None  # email: SMTP AUTH user
    password: str | None = None  # email: SMTP AUTH password
    starttls: bool = False  # email: upgrade the connection with STARTTLS
    tls: bool = False  # email: implicit TLS from the first byte (SMTPS)

    @field_validator("to", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> DestinationConfig:
        if self.starttls and self.tls:
            raise ValueError("set starttls or tls, not both (tls is SMTPS, starttls upgrades)")
        return self


class AlertingConfig(_Frozen):
    default_destinations: list[str] = Field(default_factory=list)
    kv_bucket: str = "tarn_alerts"
    deliveries_bucket: str = "tarn_deliveries"
    delivery_timeout_seconds: float = 10.0


class NotificationsConfig(_Frozen):
    enabled: bool = True  # with storage.kind s3: bridge bucket notifications to the broker
    stream: str = "TARN_BUCKET_EVENTS"
    subject: str = "tarn.bucket.raw"


class DevConfig(_Frozen):
    base_port: int = 18300  # functions listen on base_port, base_port+1, ...


class Config(_Frozen):
    home: str = ".tarn"
    config_dir: str | None = None  # a user's own log_sources/, detections/, destinations
    storage: StorageConfig = StorageConfig()
    catalog: CatalogConfig = CatalogConfig()
    nats: NatsConfig = NatsConfig()
    ingest: IngestConfig = IngestConfig()
    broker: BrokerConfig = BrokerConfig()
    query: QueryConfig = QueryConfig()
    alerting: AlertingConfig = AlertingConfig()
    destinations: dict[str, DestinationConfig] = Field(default_factory=dict)
    notifications: NotificationsConfig = NotificationsConfig()
    dev: DevConfig = DevConfig()
    # Read by `tarn services` (ports, credentials) and its provisioning; accepted here so the
    # same environment can configure both.
    services: dict[str, Any] = Field(default_factory=dict)
    services_dir: str | None = None
    cache_dir: str | None = None
    java_home: str | None = None

    # -- derived values -------------------------------------------------------------------
    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def storage_root(self) -> Path:
        return (
            Path(self.storage.root).expanduser().resolve()
            if self.storage.root
            else self.home_path / "data" / "objects"
        )

    @property
    def catalog_uri(self) -> str:
        return self.catalog.uri or f"sqlite:///{self.home_path / 'data' / 'catalog.db'}"

    @property
    def warehouse(self) -> str:
        if self.catalog.warehouse:
            return self.catalog.warehouse
        if self.storage.kind == "s3":
            return f"s3://{self.storage.lake_bucket}/warehouse"
        return (self.home_path / "data" / "warehouse").as_uri()

    @property
    def broker_url(self) -> str:
        return f"http://{self.broker.host}:{self.broker.port}/"

    def ingest_token(self) -> str:
        """The bearer token for the ingestor; created once for a local home if none is set."""
        if self.ingest.token:
            return self.ingest.token
        path = self.home_path / "ingest-token"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            token = secrets.token_urlsafe(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
            return token


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_layer(environ: dict[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "TARN_CONFIG_FILE":
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is both a value and a section")
        node[path[-1]] = _parse_env_value(raw)
    return layer


def _parse_env_value(raw: str) -> Any:
    # Lists and mappings may be given as JSON; anything else stays a string for pydantic.
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def load(environ: dict[str, str] | None = None, file: str | Path | None = None) -> Config:
    """Build the configuration from tarn.yaml (TARN_CONFIG_FILE or ./tarn.yaml) and TARN_*."""
    env = dict(os.environ if environ is None else environ)
    path = Path(file or env.get("TARN_CONFIG_FILE") or "tarn.yaml")
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    elif file or env.get("TARN_CONFIG_FILE"):
        raise ConfigError(f"config file {path} does not exist; fix TARN_CONFIG_FILE or create it")
    data = _merge(data, _env_layer(env))
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid configuration ({path if path.exists() else 'environment'}): {problems}. "
            "Fix tarn.yaml or the TARN_* variable named by the key (TARN_SECTION__KEY)."
        ) from exc


@lru_cache(maxsize=1)
def get() -> Config:
    """The process-wide configuration, loaded once."""
    return load()


def reset() -> None:
    get.cache_clear()
