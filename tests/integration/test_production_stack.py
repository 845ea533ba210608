"""tarn on its production parts: MinIO, the PostgreSQL catalog and Trino, started for real.

One lake, two engines: what pyiceberg commits through tarn, Trino reads; the same Trino-dialect
queries give the same answers on Trino and on DuckDB; writers in two processes neither lose
nor duplicate; and an object dropped into MinIO ends as rows and an alert.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tarn import config, events, logsources, query, watch
from tarn.lake import Lake
from tarn.normalize import normalize
from tests.conftest import ROOT, SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


def stack_env(services_stack: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARN_")}
    env.update(services_stack.env())
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def loaded(services_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> config.Config:
    """The sample CloudTrail logs committed through tarn's lake code into a namespace of their own."""
    ns = f"parity_{uuid.uuid4().hex[:6]}"
    cfg = config.load(
        stack_env(
            services_stack,
            TARN_CATALOG__NAMESPACE=ns,
            TARN_HOME=str(tmp_path_factory.mktemp("home")),
        )
    )
    lake = Lake(cfg)
    source = logsources.get("aws_cloudtrail")
    for path in sorted(SAMPLES.glob("*.json.gz")):
        with path.open("rb") as f:
            for chunk in normalize(f, source, path.name, 50_000):
                for table, rows in chunk.tables.items():
                    lake.commit(table, rows, f"{path.name}-{chunk.index}")
    return cfg


def test_commits_go_through_minio_and_the_postgresql_catalog(loaded: config.Config) -> None:
    assert loaded.storage.kind == "s3" and loaded.catalog_uri.startswith("postgresql")
    tbl = Lake(loaded).load("aws_cloudtrail")
    assert tbl.metadata.location.startswith("s3://tarn-lake/warehouse/")
    assert Lake(loaded).count("aws_cloudtrail") == 1200


def test_trino_reads_exactly_the_rows_pyiceberg_wrote(loaded: config.Config) -> None:
    ids = query.run(loaded, "SELECT event.id FROM aws_cloudtrail", engine="trino").rows
    assert len(ids) == 1200
    written = {r["event"]["id"] for r in Lake(loaded).scan_arrow("aws_cloudtrail").to_pylist()}
    assert {i for (i,) in ids} == written
    nested = query.run(
        loaded,
        f"SELECT user.name, aws.cloudtrail.user_identity.type, ts FROM iceberg.{loaded.catalog.namespace}.aws_cloudtrail "
        "WHERE event.action = 'ConsoleLogin' AND aws.cloudtrail.user_identity.type = 'Root'",
        engine="trino",
    ).rows
    assert [(n, t) for n, t, _ in nested] == [("root", "Root")]
    assert nested[0][2] == datetime(2026, 11, 20, 1, 12, 7, tzinfo=UTC)


PARITY_QUERIES = {
    "count": "SELECT count(*) FROM aws_cloudtrail",
    "per_action": "SELECT event.action, count(*) AS n FROM aws_cloudtrail GROUP BY event.action ORDER BY n DESC, event.action LIMIT 10",
    "nested_filter": "SELECT user.name, count(*) AS n FROM aws_cloudtrail WHERE event.outcome = 'failure' AND user.name IS NOT NULL GROUP BY user.name ORDER BY user.name",
    "time_window": "SELECT count(*) FROM aws_cloudtrail WHERE ts >= TIMESTAMP '2026-11-20 01:00:00 UTC' AND ts < TIMESTAMP '2026-11-20 02:30:00 UTC'",
    "per_hour": "SELECT date_trunc('hour', ts) AS hour, count(*) AS n FROM aws_cloudtrail GROUP BY 1 ORDER BY 1",
    "approx_distinct": "SELECT cloud.region, approx_distinct(user.name) AS users FROM aws_cloudtrail GROUP BY cloud.region ORDER BY cloud.region",
    "strings": "SELECT lower(split_part(event.provider, '.', 1)) AS service, length(event.provider) AS len, count(*) AS n FROM aws_cloudtrail GROUP BY 1, 2 ORDER BY n DESC, service LIMIT 5",
    "join": (
        "SELECT f.user.name AS who, f.source.ip AS ip, count(*) AS failures FROM aws_cloudtrail f "
        "JOIN (SELECT DISTINCT source.ip AS ip, user.name AS name FROM aws_cloudtrail "
        "      WHERE event.action = 'ConsoleLogin' AND event.outcome = 'success') s "
        "ON f.source.ip = s.ip AND f.user.name = s.name "
        "WHERE f.event.action = 'ConsoleLogin' AND f.event.outcome = 'failure' GROUP BY 1, 2 ORDER BY 1"
    ),
    "arrays": "SELECT cardinality(related.user) AS users, count(*) AS n FROM aws_cloudtrail GROUP BY 1 ORDER BY 1",
    "contains": "SELECT count(*) FROM aws_cloudtrail WHERE contains(related.ip, '175.16.199.37')",
    "coalesce_case": (
        "SELECT coalesce(error.code, 'none') AS code, CASE WHEN aws.cloudtrail.read_only THEN 'read' ELSE 'write' END AS kind, "
        "count(*) AS n FROM aws_cloudtrail GROUP BY 1, 2 ORDER BY n DESC, code, kind"
    ),
    "having": "SELECT source.ip, count(DISTINCT event.action) AS actions FROM aws_cloudtrail WHERE source.ip IS NOT NULL GROUP BY source.ip HAVING count(*) > 20 ORDER BY actions DESC, source.ip",
    "json": "SELECT json_extract_scalar(aws.cloudtrail.request_parameters, '$.userName') AS target, count(*) AS n FROM aws_cloudtrail WHERE event.action = 'CreateAccessKey' GROUP BY 1 ORDER BY 1",
    "window": (
        "SELECT who, action FROM (SELECT user.name AS who, event.action AS action, "
        "row_number() OVER (PARTITION BY user.name ORDER BY ts, event.id) AS rn FROM aws_cloudtrail WHERE user.name IS NOT NULL) "
        "WHERE rn = 1 ORDER BY who"
    ),
}


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() else float(value)
    return value


@pytest.mark.parametrize("name", sorted(PARITY_QUERIES))
def test_trino_and_duckdb_give_identical_results(loaded: config.Config, name: str) -> None:
    sql = PARITY_QUERIES[name]
    trino_rows = [tuple(_norm(v) for v in r) for r in query.run(loaded, sql, engine="trino").rows]
    duck_rows = [tuple(_norm(v) for v in r) for r in query.run(loaded, sql, engine="duckdb").rows]
    assert trino_rows, f"{name} returned nothing: not a useful parity check"
    assert duck_rows == trino_rows


def test_trino_rejection_gives_line_and_column(loaded: config.Config) -> None:
    from tarn.exceptions import QueryError

    with pytest.raises(QueryError, match=r"Trino rejected the query \(line 2, column 8\)"):
        query.run(loaded, "SELECT 1\nFROM   nope_table", engine="trino")


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    import pyarrow as pa
    from tarn import config
    from tarn.lake import Lake

    first, last = int(sys.argv[1]), int(sys.argv[2])
    lake = Lake(config.get())
    schema = pa.schema([pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False), pa.field("n", pa.int64())])
    for b in range(first, last):
        rows = [{"ts": datetime(2026, 11, 20, tzinfo=UTC), "n": b * 100 + i} for i in range(100)]
        lake.commit("concurrent", pa.Table.from_pylist(rows, schema=schema), f"batch-{b}")
    """
)


def test_two_writer_processes_lose_and_duplicate_nothing(services_stack: Any, tmp_path) -> None:
    ns = f"conc_{uuid.uuid4().hex[:6]}"
    env = stack_env(services_stack, TARN_CATALOG__NAMESPACE=ns, TARN_HOME=str(tmp_path))
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    # Batches 5..9 go to both: the same batch redelivered to a second replica.
    procs = [
        subprocess.Popen([sys.executable, str(script), a, b], env=env, cwd=ROOT)
        for a, b in (("0", "10"), ("5", "15"))
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    cfg = config.load(env)
    rows = query.run(cfg, "SELECT count(*), count(DISTINCT n) FROM concurrent", engine="trino").rows
    assert rows == [(1500, 1500)]
    assert Lake(cfg).committed_batches(Lake(cfg).load("concurrent")) == {
        f"batch-{b}" for b in range(15)
    }


def test_object_dropped_in_minio_lands_once_and_raises_its_alert(
    services_stack: Any, tmp_path
) -> None:
    from minio import Minio

    from tarn.devstack import FUNCTIONS, DevStack
    from tarn.webhook_receiver import WebhookReceiver
    from tests.integration.conftest import _free_base

    tag = uuid.uuid4().hex[:6]
    receiver = WebhookReceiver(secret="s")
    base = _free_base(len(FUNCTIONS) + 1)
    env = stack_env(
        services_stack,
        TARN_HOME=str(tmp_path / "home"),
        TARN_CATALOG__NAMESPACE=f"chain_{tag}",
        TARN_BROKER__PORT=str(base + len(FUNCTIONS)),
        TARN_DEV__BASE_PORT=str(base),
        TARN_INGEST__TOKEN="t",
        TARN_ALERTING__KV_BUCKET=f"alerts_{tag}",
        TARN_ALERTING__DELIVERIES_BUCKET=f"deliveries_{tag}",
        TARN_DESTINATIONS__HOOK__TYPE="webhook",
        TARN_DESTINATIONS__HOOK__URL=receiver.start(),
        TARN_DESTINATIONS__HOOK__SECRET="s",
    )
    cfg = config.load(env)
    dev = DevStack(cfg, environ=env)
    path = next(
        p for p in sorted(SAMPLES.glob("*.json.gz")) if "us-east-1_20261120T0315Z" in p.name
    )
    key = f"raw/aws_cloudtrail/{tag}/{path.name}"
    try:
        dev.up()
        assert dev.managed("bucket-bridge").running()
        client = Minio(
            cfg.storage.endpoint.split("://")[1],
            access_key=cfg.storage.access_key,
            secret_key=cfg.storage.secret_key,
            secure=False,
        )
        start = asyncio.run(watch.stream_position(cfg))
        data = path.read_bytes()
        for _ in range(2):  # the same object twice: two notifications, one ingest
            client.put_object(cfg.storage.raw_bucket, key, io.BytesIO(data), len(data))
        etag = client.stat_object(cfg.storage.raw_bucket, key).etag
        ingest_id = events.derive_id("bucket", cfg.storage.raw_bucket, key, etag)
        done = asyncio.run(watch.wait_for_ingests(cfg, [ingest_id], start, 180))
        assert done[ingest_id].good == 278
        deadline = time.monotonic() + 120
        while not any(
            a["detection"] == "aws_root_console_login" for a in receiver.alerts().values()
        ):
            assert time.monotonic() < deadline, "no alert reached the webhook"
            time.sleep(0.5)
        time.sleep(3)  # room for a duplicate to show up, if there were one
        rows = query.run(
            cfg, "SELECT count(*), count(DISTINCT event.id) FROM aws_cloudtrail", engine="trino"
        ).rows
        assert rows == [(278, 278)]
        assert receiver.rejected == []
        assert (
            sum(
                1
                for r in receiver.received
                if r.body["alert"]["detection"] == "aws_root_console_login"
            )
            == 1
        )
    finally:
        dev.down()
        receiver.stop()


@pytest.mark.parametrize(
    "case", ["test_ssh_login_after_failures", "test_okta_user_multiple_countries"]
)
def test_scheduled_detection_queries_fire_and_miss_the_same_on_trino(
    services_stack: Any, tmp_path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The scheduled SQL detections' firing and near-miss cases, with the queries run on Trino."""
    import tests.unit.test_scheduled_queries as cases

    cfg = config.load(
        stack_env(
            services_stack,
            TARN_CATALOG__NAMESPACE=f"sched_{uuid.uuid4().hex[:6]}",
            TARN_HOME=str(tmp_path),
        )
    )
    engines = []

    def run_on_trino(cfg: config.Config, det: Any) -> list[dict[str, Any]]:
        result = query.run(cfg, det.query, engine="trino")
        engines.append(result.engine)
        return [
            {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}
            for row in result.as_dicts()
        ]

    monkeypatch.setattr(cases, "run", run_on_trino)
    getattr(cases, case)(cfg)
    assert engines and set(engines) == {"trino"}
