"""The local service stack for real: nats-server, PostgreSQL, MinIO, Trino, and one lake shared by
pyiceberg and Trino.

The stack is brought up once per test session (the first run builds MinIO and downloads Trino,
both cached under ~/.cache/tarn) and stopped at the end. Off CI a missing tool (Go, Maven, Java,
PostgreSQL) skips these tests; under CI=true nothing skips.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tarn import services
from tests.integration.conftest import services_log

if TYPE_CHECKING:
    from minio import Minio
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from trino.dbapi import Connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

UTC = dt.UTC
_log = services_log


@pytest.fixture()
def stack(services_stack: services.Endpoints) -> services.Endpoints:
    """This module's name for the session's `services_stack` (conftest.py); it shadows the
    package's `stack` fixture (the embedded dev stack), which these tests do not use."""
    return services_stack


@pytest.fixture()
def catalog(stack: services.Endpoints) -> Iterator[SqlCatalog]:
    from pyiceberg.catalog.sql import SqlCatalog

    cat = SqlCatalog(stack.catalog_name, **stack.catalog_properties())
    try:
        yield cat
    finally:
        cat.engine.dispose()


def _trino(stack: services.Endpoints) -> Connection:
    import trino

    return trino.dbapi.connect(
        host=stack.trino_host,
        port=stack.trino_port,
        user=stack.trino_user,
        catalog=stack.trino_catalog,
        schema=stack.namespace,
    )


def _query(stack: services.Endpoints, sql: str) -> list[list[Any]]:
    conn = _trino(stack)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [list(r) for r in cur.fetchall()]
    finally:
        conn.close()


# --- each server answers --------------------------------------------------------------------------


def test_nats_jetstream_answers(stack: services.Endpoints) -> None:
    import nats

    async def roundtrip() -> None:
        nc = await nats.connect(stack.nats_url, connect_timeout=5)
        try:
            js = nc.jetstream()
            info = await js.account_info()
            assert info.limits is not None
            stream = f"SVC_TEST_{uuid.uuid4().hex[:8].upper()}"
            await js.add_stream(name=stream, subjects=[f"svc.test.{stream}"])
            ack = await js.publish(f"svc.test.{stream}", b"hello", headers={"Nats-Msg-Id": "one"})
            dup = await js.publish(f"svc.test.{stream}", b"hello", headers={"Nats-Msg-Id": "one"})
            assert ack.seq == 1 and dup.duplicate
            msg = await js.get_msg(stream, 1)
            assert msg.data == b"hello"
            await js.delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(roundtrip())


def test_postgres_accepts_queries(stack: services.Endpoints) -> None:
    import psycopg2

    conn = psycopg2.connect(
        host=stack.postgres_host,
        port=stack.postgres_port,
        user=stack.postgres_user,
        password=stack.postgres_password,
        dbname=stack.postgres_database,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database(), 40 + 2")
            assert cur.fetchone() == (stack.postgres_user, "tarn", 42)
            # pyiceberg created the JDBC catalog tables (the layout Trino's jdbc catalog reads).
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_name IN ('iceberg_tables', 'iceberg_namespace_properties')"
            )
            cols = {(t, c) for t, c in cur.fetchall()}
            assert ("iceberg_tables", "metadata_location") in cols
            assert ("iceberg_tables", "iceberg_type") in cols  # schema V1
            assert ("iceberg_namespace_properties", "property_key") in cols
    finally:
        conn.close()


def test_postgres_rejects_a_wrong_password(stack: services.Endpoints) -> None:
    import psycopg2

    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(
            host=stack.postgres_host,
            port=stack.postgres_port,
            user=stack.postgres_user,
            password="not-the-password",
            dbname=stack.postgres_database,
            connect_timeout=5,
        ).close()


def test_minio_put_get(stack: services.Endpoints) -> None:
    from minio import Minio

    client = Minio(
        stack.minio_endpoint.removeprefix("http://"),
        access_key=stack.minio_user,
        secret_key=stack.minio_password,
        secure=False,
        region=stack.region,
    )
    assert client.bucket_exists(stack.raw_bucket)
    assert client.bucket_exists(stack.lake_bucket)
    body = os.urandom(4096)
    key = f"test/{uuid.uuid4().hex}.bin"
    client.put_object(stack.raw_bucket, key, io.BytesIO(body), len(body))
    resp = client.get_object(stack.raw_bucket, key)
    try:
        assert resp.read() == body
    finally:
        resp.close()
        resp.release_conn()
    client.remove_object(stack.raw_bucket, key)


def test_trino_select_1(stack: services.Endpoints) -> None:
    assert _query(stack, "SELECT 1") == [[1]]
    catalogs = [r[0] for r in _query(stack, "SHOW CATALOGS")]
    assert "iceberg" in catalogs
    assert [stack.namespace] in _query(stack, "SHOW SCHEMAS FROM iceberg")


# --- bucket notifications: MinIO -> NATS JetStream ---------------------------------------------------


def _minio(stack: services.Endpoints) -> Minio:
    from minio import Minio

    return Minio(
        stack.minio_endpoint.removeprefix("http://"),
        access_key=stack.minio_user,
        secret_key=stack.minio_password,
        secure=False,
        region=stack.region,
    )


def _put(client: Minio, bucket: str, key: str, body: bytes = b'{"Records": []}') -> None:
    client.put_object(bucket, key, io.BytesIO(body), len(body), content_type="application/json")


async def _last_seq(nats_url: str, stream: str) -> int:
    import nats

    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.last_seq)
    finally:
        await nc.close()


def _bucket_events(
    nats_url: str, stream: str, after: int, want: int, timeout: float = 30, grace: float = 4
) -> list[tuple[str, dict[str, Any]]]:
    """(subject, JSON body) of the messages after sequence `after`: waits until `want` of them are
    there, then `grace` seconds more for any that should not come (MinIO's queue store sends what
    it holds every 3 s)."""
    import nats
    from nats.js.errors import NotFoundError

    async def collect() -> list[tuple[str, dict[str, Any]]]:
        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            js = nc.jetstream()
            got: list[tuple[str, dict[str, Any]]] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            quiet_until: float | None = None
            while True:
                try:
                    msg = await js.get_msg(stream, after + len(got) + 1)
                except NotFoundError:
                    now = loop.time()
                    if len(got) >= want and quiet_until is None:
                        quiet_until = now + grace
                    if now > (quiet_until if quiet_until is not None else deadline):
                        return got
                    await asyncio.sleep(0.1)
                    continue
                assert msg.data is not None
                got.append((msg.subject or "", json.loads(msg.data)))
        finally:
            await nc.close()

    return asyncio.run(collect())


def _keys(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    from urllib.parse import unquote_plus

    return [unquote_plus(e["Records"][0]["s3"]["object"]["key"]) for _, e in events]


def test_bucket_events_stream_and_rule_exist(stack: services.Endpoints) -> None:
    import nats
    from nats.js.api import StorageType

    async def info() -> Any:
        nc = await nats.connect(stack.nats_url, connect_timeout=5)
        try:
            return await nc.jetstream().stream_info("TARN_BUCKET_EVENTS")
        finally:
            await nc.close()

    cfg = asyncio.run(info()).config
    assert cfg.subjects == ["tarn.bucket.>"]
    assert cfg.storage == StorageType.FILE
    assert cfg.max_age == 7 * 24 * 3600

    rules = _minio(stack).get_bucket_notification(stack.raw_bucket).queue_config_list
    assert len(rules) == 1
    # MinIO hands the ARN back with its region filled in: arn:minio:sqs:<region>:TARN:nats
    assert (rules[0].queue or "").endswith(":TARN:nats")
    assert rules[0].events == ["s3:ObjectCreated:*"]
    assert rules[0].prefix_filter_rule is not None and rules[0].prefix_filter_rule.value == "raw/"
    assert _minio(stack).get_bucket_notification(stack.lake_bucket).queue_config_list == []


def test_object_under_raw_is_announced_on_jetstream(stack: services.Endpoints) -> None:
    stream = stack.env()["TARN_NOTIFICATIONS__STREAM"]
    assert stream == "TARN_BUCKET_EVENTS"
    assert stack.env()["TARN_NOTIFICATIONS__SUBJECT"] == "tarn.bucket.raw"
    client = _minio(stack)
    before = asyncio.run(_last_seq(stack.nats_url, stream))
    key = "raw/aws_cloudtrail/x.json"
    odd = f"raw/aws_cloudtrail/{uuid.uuid4().hex} a+b=c&d.json.gz"
    # Outside raw/ (and in the lake bucket): no event.
    _put(client, stack.raw_bucket, "rawish/aws_cloudtrail/x.json")
    _put(client, stack.raw_bucket, "elsewhere/raw/aws_cloudtrail/x.json")
    _put(client, stack.lake_bucket, key)
    # Under raw/: one event per put, also the second put of the same key.
    _put(client, stack.raw_bucket, key)
    _put(client, stack.raw_bucket, key)
    _put(client, stack.raw_bucket, odd)

    events = _bucket_events(stack.nats_url, stream, before, want=3)
    _log(f"a bucket notification on {events[0][0]}: {json.dumps(events[0][1], indent=2)}")
    assert sorted(_keys(events)) == sorted([key, key, odd])
    for subject, body in events:
        assert subject == "tarn.bucket.raw"
        record = body["Records"][0]
        assert len(body["Records"]) == 1
        assert body["EventName"] == record["eventName"] == "s3:ObjectCreated:Put"
        assert record["eventSource"] == "minio:s3"
        assert record["s3"]["bucket"]["name"] == stack.raw_bucket
        assert record["s3"]["object"]["size"] == len(b'{"Records": []}')
        assert record["s3"]["object"]["sequencer"]
        assert body["Key"] == f"{stack.raw_bucket}/{_keys([(subject, body)])[0]}"
    # The key is URL-encoded in the record (as S3 does), not in the top-level Key.
    odd_record = next(b for _, b in events if b["Key"].endswith(".json.gz"))["Records"][0]
    assert odd_record["s3"]["object"]["key"] != odd
    assert " " not in odd_record["s3"]["object"]["key"]
    # Two puts of one key: two events, told apart by the object's etag/sequencer only.
    same = [b["Records"][0]["s3"]["object"] for _, b in events if b["Key"].endswith("/x.json")]
    assert len(same) == 2 and same[0]["sequencer"] != same[1]["sequencer"]


def test_bucket_events_survive_a_nats_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MinIO keeps events in its queue dir while NATS is down and sends them when it is back.

    On a stack of its own (nats + minio on free ports), so the session's stack is not disturbed.
    """
    from tarn.services import _nats
    from tarn.services._common import Layout

    # Ports of its own (monkeypatch undoes the variables after the test).
    for name in ("NATS", "MINIO", "MINIO_CONSOLE"):
        monkeypatch.setenv(f"TARN_SERVICES__{name}_PORT", str(_free_port()))
    state = tmp_path / "state"
    try:
        ep = services.up(["minio"], state_dir=state)
        assert set(ep.services) == {"nats", "minio"}  # minio implies nats
        assert (state / "minio" / "events").is_dir()
        client = _minio(ep)
        assert _nats.stop(Layout(state))
        key = f"raw/aws_cloudtrail/{uuid.uuid4().hex}.json"
        _put(client, ep.raw_bucket, key)  # NATS is down: the put succeeds, the event waits on disk
        queue = state / "minio" / "events"
        deadline = time.monotonic() + 10  # MinIO hands events to its targets asynchronously
        while not list(queue.rglob("*.event")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(queue.rglob("*.event")), sorted(p.name for p in queue.rglob("*"))
        # `up` again without the port variable: nats comes back on the port MinIO publishes to
        # (not the default), with its JetStream store and so the stream; MinIO is left running.
        monkeypatch.delenv("TARN_SERVICES__NATS_PORT")
        again = services.up(["minio"], state_dir=state)
        assert again.nats_url == ep.nats_url and again.pids["minio"] == ep.pids["minio"]
        assert again.pids["nats"] != ep.pids["nats"]
        events = _bucket_events(ep.nats_url, "TARN_BUCKET_EVENTS", 0, want=1, timeout=60, grace=1)
        assert _keys(events) == [key]
    finally:
        services.down(state, purge=True)


# --- one lake, two engines --------------------------------------------------------------------------


def _events_schema() -> Schema:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType, StructType, TimestamptzType

    return Schema(
        NestedField(1, "ts", TimestamptzType(), required=True),
        NestedField(
            2,
            "event",
            StructType(
                NestedField(3, "action", StringType(), required=False),
                NestedField(4, "outcome", StringType(), required=False),
                NestedField(5, "severity", LongType(), required=False),
            ),
            required=False,
        ),
        NestedField(
            6,
            "tarn",
            StructType(
                NestedField(7, "log_source", StringType(), required=False),
                NestedField(8, "ingest_id", StringType(), required=False),
            ),
            required=False,
        ),
    )


def _rows(n: int, start: dt.datetime, with_category: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        event: dict[str, Any] = {
            "action": f"action-{i}",
            "outcome": "success" if i % 2 == 0 else "failure",
            "severity": i * 10,
        }
        row: dict[str, Any] = {
            "ts": start + dt.timedelta(hours=7 * i),  # spans several days: several partitions
            "event": event,
            "tarn": {"log_source": "test", "ingest_id": f"ingest-{i}"},
        }
        if with_category:
            event["category"] = f"cat-{i}"
            row["source_ip"] = f"10.0.0.{i}"
        rows.append(row)
    return rows


def test_pyiceberg_writes_trino_reads_and_schema_evolves(
    stack: services.Endpoints, catalog: SqlCatalog
) -> None:
    import pyarrow as pa
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform
    from pyiceberg.types import StringType

    cat = catalog
    name = f"svc_events_{uuid.uuid4().hex[:8]}"
    spec = PartitionSpec(
        PartitionField(source_id=1, field_id=1000, transform=DayTransform(), name="ts_day")
    )
    table = cat.create_table((stack.namespace, name), schema=_events_schema(), partition_spec=spec)

    n = 9
    start = dt.datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=UTC)
    rows = _rows(n, start)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))

    fq = f"iceberg.{stack.namespace}.{name}"
    assert _query(stack, f"SELECT count(*) FROM {fq}") == [[n]]
    got = _query(
        stack,
        f"SELECT ts, event.action, event.outcome, event.severity, tarn.log_source, tarn.ingest_id "
        f"FROM {fq} ORDER BY ts",
    )
    want = [
        [
            r["ts"],
            r["event"]["action"],
            r["event"]["outcome"],
            r["event"]["severity"],
            r["tarn"]["log_source"],
            r["tarn"]["ingest_id"],
        ]
        for r in rows
    ]
    assert [[g[0].astimezone(UTC), *g[1:]] for g in got] == want
    # Partitioned by day: one partition per distinct day of ts.
    days = {r["ts"].date() for r in rows}
    assert _query(stack, f'SELECT count(*) FROM "{name}$partitions"') == [[len(days)]]

    # Schema evolution: a new top-level column and a new nested field, then more rows.
    with table.update_schema() as update:
        update.add_column("source_ip", StringType())
        update.add_column(("event", "category"), StringType())
    m = 4
    more = _rows(m, start + dt.timedelta(days=30), with_category=True)
    table.append(pa.Table.from_pylist(more, schema=table.schema().as_arrow()))

    assert _query(stack, f"SELECT count(*) FROM {fq}") == [[n + m]]
    columns = [r[0] for r in _query(stack, f"DESCRIBE {fq}")]
    assert "source_ip" in columns
    got = _query(
        stack,
        f"SELECT source_ip, event.category FROM {fq} WHERE source_ip IS NOT NULL ORDER BY ts",
    )
    assert got == [[r["source_ip"], r["event"]["category"]] for r in more]
    assert _query(stack, f"SELECT count(*) FROM {fq} WHERE source_ip IS NULL") == [[n]]

    cat.drop_table((stack.namespace, name))


def test_trino_writes_pyiceberg_reads(stack: services.Endpoints, catalog: SqlCatalog) -> None:
    """The other direction: a table Trino creates and fills is read by pyiceberg, and both commit to it."""
    import pyarrow as pa

    cat = catalog
    name = f"svc_trino_{uuid.uuid4().hex[:8]}"
    fq = f"iceberg.{stack.namespace}.{name}"
    _query(
        stack,
        f"CREATE TABLE {fq} (ts timestamp(6) with time zone NOT NULL, "
        "host ROW(name varchar, ip varchar), n bigint) WITH (partitioning = ARRAY['day(ts)'])",
    )
    _query(
        stack,
        f"INSERT INTO {fq} VALUES "
        "(TIMESTAMP '2026-03-01 10:00:00.123456 UTC', ROW('a', '10.0.0.1'), 1), "
        "(TIMESTAMP '2026-03-02 11:00:00.000001 UTC', ROW('b', '10.0.0.2'), 2)",
    )
    assert (stack.namespace, name) in cat.list_tables(stack.namespace)
    table = cat.load_table((stack.namespace, name))
    got = table.scan().to_arrow().sort_by("n").to_pylist()
    assert [(r["ts"], r["host"]["name"], r["n"]) for r in got] == [
        (dt.datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), "a", 1),
        (dt.datetime(2026, 3, 2, 11, 0, 0, 1, tzinfo=UTC), "b", 2),
    ]
    # pyiceberg commits on top of Trino's snapshot; Trino sees both.
    extra = [{"ts": dt.datetime(2026, 3, 3, tzinfo=UTC), "host": {"name": "c", "ip": None}, "n": 3}]
    table.append(pa.Table.from_pylist(extra, schema=table.schema().as_arrow()))
    assert _query(stack, f"SELECT sum(n), count(*) FROM {fq}") == [[6, 3]]
    _query(stack, f"DROP TABLE {fq}")
    assert (stack.namespace, name) not in cat.list_tables(stack.namespace)


# --- the stack as a user sees it ----------------------------------------------------------------------


def test_up_again_is_idempotent(stack: services.Endpoints) -> None:
    again = services.up(state_dir=stack.state_dir)
    _log(f"up() again, stack running: timings (s) {again.timings}")
    assert again.pids == stack.pids
    assert again.env() == stack.env()
    assert again.timings["total"] < 30


def test_status_reports_every_service_up(stack: services.Endpoints) -> None:
    info = services.status(stack.state_dir)
    assert set(info) == {"nats", "postgres", "minio", "trino"}
    for name, row in info.items():
        assert row["running"] and row["healthy"], (name, row)
        assert row["pid"] == stack.pids[name]
        assert row["address"].startswith("127.0.0.1:")


def test_env_file_configures_tarn(stack: services.Endpoints) -> None:
    env_file = stack.env_file
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack.state_dir / "credentials.json").stat().st_mode) == 0o600
    out = subprocess.run(
        ["bash", "-c", f"set -a; . {env_file}; set +a; env -0"],
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    ).stdout.decode()
    loaded = dict(item.split("=", 1) for item in out.split("\0") if item.startswith("TARN_"))
    assert loaded == stack.env()
    env = stack.env()
    assert env["TARN_STORAGE__KIND"] == "s3"
    assert (
        env["TARN_STORAGE__ENDPOINT"] == "http://127.0.0.1:19000"
        or "TARN_SERVICES__MINIO_PORT" in os.environ
    )
    assert env["TARN_CATALOG__URI"].startswith("postgresql+psycopg2://tarn:")
    assert env["TARN_CATALOG__WAREHOUSE"] == "s3://tarn-lake/warehouse"
    assert env["TARN_QUERY__ENGINE"] == "trino"
    assert env["TARN_QUERY__TRINO__CATALOG"] == "iceberg"
    assert env["TARN_NOTIFICATIONS__STREAM"] == "TARN_BUCKET_EVENTS"
    assert env["TARN_NOTIFICATIONS__SUBJECT"] == "tarn.bucket.raw"


def test_cli_up_and_status(stack: services.Endpoints) -> None:
    from click.testing import CliRunner

    from tarn.services.cli import services as group

    runner = CliRunner()
    res = runner.invoke(group, ["status", "--state-dir", str(stack.state_dir)], terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in ("nats", "postgres", "minio", "trino"):
        assert name in res.output
    res = runner.invoke(group, ["up", "--state-dir", str(stack.state_dir)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "tarn-services.env" in res.output
    assert stack.minio_password in res.output


# --- failures say what to do ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_taken_by_a_stranger_is_refused_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("TARN_SERVICES__NATS_PORT", str(port))
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", port))
        stranger.listen()
        with pytest.raises(services.PortInUseError) as err:
            services.up(["nats"], state_dir=tmp_path / "state")
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "TARN_SERVICES__NATS_PORT" in msg
    assert services.status(tmp_path / "state")["nats"]["running"] is False


def test_server_that_cannot_start_reports_log_tail_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bound but not listening: tarn's port probe finds nothing, nats-server's bind() fails.
    port = _free_port()
    monkeypatch.setenv("TARN_SERVICES__NATS_PORT", str(port))
    state = tmp_path / "state"
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", port))
        with pytest.raises(services.ProcessStartError) as err:
            services.up(["nats"], state_dir=state)
    msg = str(err.value)
    assert "nats failed to start" in msg
    assert "--- last lines of" in msg and "address already in use" in msg
    assert "--- fix ---" in msg and "TARN_SERVICES__NATS_PORT" in msg
    assert not (state / "run" / "nats.pid").exists()
    services.down(state, purge=True)
