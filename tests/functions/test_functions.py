"""Every function, built by functions-framework, receiving real CloudEvents (binary and structured)."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from tarn import config, deadletters, events
from tarn.alerting import ALERTS_TABLE
from tarn.lake import SIDELINE_TABLE, Lake
from tarn.webhook_receiver import WebhookReceiver
from tests.conftest import SAMPLES, event_data
from tests.functions.conftest import MODES, post_event

TOKEN = {"Authorization": "Bearer t0ken"}


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARN_INGEST__TOKEN", "t0ken")


def root_login(event_id: str = "r1", ts: str = "2026-11-20T01:12:07Z") -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": ts,
        "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com",
        "userIdentity": {"type": "Root", "principalId": "123456789012"},
        "sourceIPAddress": "67.43.156.12",
        "responseElements": {"ConsoleLogin": "Success"},
        "recipientAccountId": "123456789012",
        "eventID": event_id,
    }


def ingest(client, body: bytes, source: str = "aws_cloudtrail", headers: dict | None = None):
    return client.post(f"/ingest/{source}", data=body, headers={**TOKEN, **(headers or {})})


# -- ingestor ----------------------------------------------------------------------------------
def test_ingestor_stores_raw_object_and_emits_a_reference(make_app, sink, cfg) -> None:
    client = make_app("ingestor")
    body = gzip.compress(json.dumps({"Records": [root_login()]}).encode())
    resp = ingest(client, body)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    accepted = resp.get_json()
    assert accepted["bytes"] == len(body) and accepted["key"].endswith(".json.gz")
    from tarn.storage import open_store

    assert open_store(config.get()).get_bytes(accepted["bucket"], accepted["key"]) == body
    (event,) = sink.of_type(events.OBJECT_RAW)
    data = event_data(event)
    assert data == {
        "log_source": "aws_cloudtrail",
        "bucket": accepted["bucket"],
        "key": accepted["key"],
        "ingest_id": accepted["ingest_id"],
        "size": len(body),
    }
    assert event["id"] == accepted["ingest_id"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Basic t0ken"}, 401)],
)
def test_ingestor_refuses_missing_or_wrong_token(make_app, sink, headers, status) -> None:
    resp = make_app("ingestor").post("/ingest/aws_cloudtrail", data=b"{}", headers=headers)
    assert resp.status_code == status
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert sink.events == []


def test_ingestor_unknown_log_source_is_404_naming_the_known_ones(make_app, sink) -> None:
    resp = ingest(make_app("ingestor"), b"{}", source="nope")
    assert resp.status_code == 404
    assert "aws_cloudtrail" in resp.get_json()["known"]


def test_ingestor_body_over_limit_is_413_before_and_after_decompression(
    make_app, sink, monkeypatch
) -> None:
    monkeypatch.setenv("TARN_INGEST__MAX_BODY_BYTES", "100000")
    client = make_app("ingestor")
    assert ingest(client, b"x" * 100_001).status_code == 413
    bomb = gzip.compress(b"{}\n" * 200_000)  # small on the wire, 600 kB inside
    assert len(bomb) < 100_000
    resp = ingest(client, bomb)
    assert resp.status_code == 413 and "after decompression" in resp.get_json()["error"]
    assert sink.events == []
    assert ingest(client, b"").status_code == 400


def test_ingestor_idempotency_key_gives_the_same_ingest(make_app, sink) -> None:
    client = make_app("ingestor")
    a = ingest(client, b"{}", headers={"Idempotency-Key": "upload-7"}).get_json()
    b = ingest(client, b"{}", headers={"Idempotency-Key": "upload-7"}).get_json()
    assert a["ingest_id"] == b["ingest_id"]
    assert {e["id"] for e in sink.events} == {a["ingest_id"]}


def test_health_and_readiness(make_app, sink) -> None:
    client = make_app("ingestor")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json() == {"store": True}


# -- transformer, lake_writer, detector --------------------------------------------------------
def raw_event(cfg, body: bytes, ingest_id: str = "ing-1"):
    from tarn.ingest import raw_object_event
    from tarn.storage import open_store

    key = f"raw/aws_cloudtrail/{ingest_id}.json"
    open_store(cfg).put_bytes(cfg.storage.raw_bucket, key, body)
    return raw_object_event("aws_cloudtrail", cfg.storage.raw_bucket, key, ingest_id, len(body))


@pytest.mark.parametrize("mode", MODES)
def test_transformer_writes_batches_and_sidelines_bad_lines(make_app, sink, cfg, mode) -> None:
    body = (SAMPLES / "bad_lines.ndjson").read_bytes()
    resp = post_event(make_app("transformer"), raw_event(cfg, body), mode)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    (event,) = sink.of_type(events.BATCH_NORMALIZED)
    data = event_data(event)
    assert data["counts"] == {"good": 7, "sidelined": 3}
    assert data["final"] and data["chunks"] == 1
    assert [t["table"] for t in data["tables"]] == ["aws_cloudtrail"]
    assert data["sideline"]["rows"] == 3
    assert event["id"] == events.derive_id("ing-1", 0)


def test_transformer_is_deterministic_on_redelivery(make_app, sink, cfg) -> None:
    client = make_app("transformer")
    raw = raw_event(cfg, json.dumps({"Records": [root_login()]}).encode())
    post_event(client, raw, "binary")
    post_event(client, raw, "structured")
    first, second = sink.of_type(events.BATCH_NORMALIZED)
    assert first["id"] == second["id"]
    assert event_data(first)["tables"] == event_data(second)["tables"]


@pytest.mark.parametrize("mode", MODES)
def test_lake_writer_commits_once_and_reports(make_app, sink, cfg, mode) -> None:
    post_event(
        make_app("transformer"),
        raw_event(cfg, (SAMPLES / "bad_lines.ndjson").read_bytes()),
        "binary",
    )
    (normalized,) = sink.of_type(events.BATCH_NORMALIZED)
    writer = make_app("lake_writer")
    assert post_event(writer, normalized, mode).status_code == 200
    assert post_event(writer, normalized, mode).status_code == 200  # redelivered
    lake = Lake(cfg)
    assert lake.count("aws_cloudtrail") == 7
    assert lake.count(SIDELINE_TABLE) == 3
    first, again = (event_data(e) for e in sink.of_type(events.LAKE_COMMITTED))
    assert [t["skipped"] for t in first["tables"]] == [False, False]
    assert [t["skipped"] for t in again["tables"]] == [True, True]


@pytest.mark.parametrize("mode", MODES)
def test_detector_emits_matches_and_progress(make_app, sink, cfg, mode) -> None:
    records = [
        root_login("a"),
        {**root_login("b"), "userIdentity": {"type": "IAMUser", "userName": "bob"}},
    ]
    post_event(
        make_app("transformer"), raw_event(cfg, json.dumps({"Records": records}).encode()), "binary"
    )
    (normalized,) = sink.of_type(events.BATCH_NORMALIZED)
    assert post_event(make_app("detector"), normalized, mode).status_code == 200
    (matched,) = sink.of_type(events.RULE_MATCHED)
    data = event_data(matched)
    assert data["detection"] == "aws_root_console_login"
    assert [m["event_id"] for m in data["matches"]] == ["a"]
    assert data["matches"][0]["dedupe"] == "123456789012"
    (progress,) = sink.of_type(events.BATCH_DETECTED)
    assert event_data(progress)["matches"] == {"aws_root_console_login": 1}
    assert event_data(progress)["records"] == 2


def test_a_function_that_cannot_emit_fails_so_the_broker_retries(make_app, sink, cfg) -> None:
    sink.status = 503
    resp = post_event(
        make_app("transformer", testing=False),
        raw_event(cfg, json.dumps(root_login()).encode()),
        "binary",
    )
    assert resp.status_code == 500


# -- alert_manager, alert_forwarder, dead_letter (NATS) ----------------------------------------
def matched_event(event_id: str, n: int = 1, threshold: int = 1):
    matches = [
        {
            "ts": f"2026-11-20T01:0{i}:00+00:00",
            "title": "Root login",
            "dedupe": "acct-1",
            "severity": "high",
            "context": {"i": i},
            "event_id": f"e{i}",
            "table": "aws_cloudtrail",
        }
        for i in range(n)
    ]
    body = {
        "detection": "aws_root_console_login",
        "name": "Root login",
        "threshold": threshold,
        "window_minutes": 60,
        "tags": ["attack.t1078"],
        "matches": matches,
    }
    return events.make_event(events.RULE_MATCHED, "detector", body, id_=event_id)


@pytest.mark.parametrize("mode", MODES)
def test_alert_manager_creates_updates_and_ignores_redelivery(
    make_app, sink, cfg, isolated_nats, mode
) -> None:
    client = make_app("alert_manager")
    assert post_event(client, matched_event("m1", n=2), mode).status_code == 200
    assert post_event(client, matched_event("m1", n=2), mode).status_code == 200  # redelivered
    assert post_event(client, matched_event("m2", n=1), mode).status_code == 200
    alerts = sink.of_type(events.ALERT)
    actions = [(event_data(e)["action"], event_data(e)["match_count"]) for e in alerts]
    assert actions == [("created", 2), ("created", 2), ("updated", 3)]
    assert alerts[0]["id"] == alerts[1]["id"]  # the redelivery re-emits the same event


@pytest.mark.parametrize("mode", MODES)
def test_lake_writer_keeps_the_newest_alert_version(
    make_app, sink, cfg, isolated_nats, mode
) -> None:
    manager = make_app("alert_manager")
    post_event(manager, matched_event("m1", n=2), "binary")
    post_event(manager, matched_event("m2", n=1), "binary")
    first, second = sink.of_type(events.ALERT)
    writer = make_app("lake_writer")
    # Delivered out of order, and the older one twice: the row must end at version 2.
    for event in (second, first, first):
        assert post_event(writer, event, mode).status_code == 200
    rows = Lake(config.get()).scan_arrow(ALERTS_TABLE).to_pylist()
    assert [(r["detection"], r["match_count"], r["version"]) for r in rows] == [
        ("aws_root_console_login", 3, 2)
    ]
    assert json.loads(rows[0]["context"]) == {"i": 0}


def test_alert_manager_holds_back_until_threshold(make_app, sink, cfg, isolated_nats) -> None:
    client = make_app("alert_manager")
    post_event(client, matched_event("m1", n=2, threshold=3), "binary")
    assert sink.of_type(events.ALERT) == []
    post_event(client, matched_event("m2", n=1, threshold=3), "binary")
    assert [event_data(e)["action"] for e in sink.of_type(events.ALERT)] == ["created"]


def alert_event(version: int = 1):
    body = {
        "alert_id": "al-1", "detection": "aws_root_console_login", "name": "Root login", "severity": "high",
        "title": "Root login", "dedupe": "acct-1", "match_count": version, "version": version,
        "first_matched": "2026-11-20T01:00:00+00:00", "last_matched": "2026-11-20T01:00:00+00:00",
        "context": {}, "destinations": [], "action": "created" if version == 1 else "updated",
    }  # fmt: skip
    return events.make_event(
        events.ALERT, "alert-manager", body, id_=events.derive_id("al-1", version)
    )


@pytest.mark.parametrize("mode", MODES)
def test_alert_forwarder_delivers_signed_once_per_update(
    make_app, sink, isolated_nats, monkeypatch, mode
) -> None:
    receiver = WebhookReceiver(secret="whsec")
    url = receiver.start()
    monkeypatch.setenv("TARN_DESTINATIONS__SOC__TYPE", "webhook")
    monkeypatch.setenv("TARN_DESTINATIONS__SOC__URL", url)
    monkeypatch.setenv("TARN_DESTINATIONS__SOC__SECRET", "whsec")
    try:
        client = make_app("alert_forwarder")
        assert post_event(client, alert_event(1), mode).status_code == 200
        assert (
            post_event(client, alert_event(1), mode).status_code == 200
        )  # redelivered: not sent again
        assert post_event(client, alert_event(2), mode).status_code == 200
        assert receiver.rejected == []
        assert [(r.body["action"], r.body["alert"]["version"]) for r in receiver.received] == [
            ("created", 1),
            ("updated", 2),
        ]
        assert receiver.received[0].headers["idempotency-key"] == alert_event(1)["id"]
    finally:
        receiver.stop()


def test_alert_forwarder_failure_is_an_error_for_the_broker_to_retry(
    make_app, sink, isolated_nats, monkeypatch
) -> None:
    receiver = WebhookReceiver(fail_first=1)
    monkeypatch.setenv("TARN_DESTINATIONS__SOC__TYPE", "webhook")
    monkeypatch.setenv("TARN_DESTINATIONS__SOC__URL", receiver.start())
    try:
        client = make_app("alert_forwarder", testing=False)
        assert post_event(client, alert_event(1), "binary").status_code == 500
        assert post_event(client, alert_event(1), "binary").status_code == 200
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


def test_unknown_destination_type_names_the_known_ones(
    make_app, sink, isolated_nats, monkeypatch
) -> None:
    monkeypatch.setenv("TARN_DESTINATIONS__X__TYPE", "carrier-pigeon")
    monkeypatch.setenv("TARN_DESTINATIONS__X__URL", "http://127.0.0.1:9")
    from tarn import alerting, runtime

    with pytest.raises(alerting.DeliveryError, match="known: webhook"):
        alerting.forward(runtime.context(), alert_event(1))


def test_dead_letter_keeps_the_event_for_tarn_dlq(make_app, sink, isolated_nats) -> None:
    from tarn import bus

    cfg = config.get()

    async def streams() -> None:
        nc = await bus.connect(cfg)
        await bus.ensure_streams(nc, cfg)
        await nc.close()

    asyncio.run(streams())
    failed = alert_event(1)
    failed["knativeerrordest"] = "http://127.0.0.1:1/"
    failed["knativeerrorcode"] = "500"
    failed["knativeerrordata"] = "Ym9vbQ=="  # "boom"
    failed["tarntrigger"] = "alert-forwarder-alert"
    client = make_app("dead_letter")
    assert post_event(client, failed, "binary").status_code == 200
    assert post_event(client, failed, "structured").status_code == 200  # deduplicated
    (row,) = asyncio.run(deadletters.list_dead_letters(cfg))
    assert row["trigger"] == "alert-forwarder-alert" and row["id"] == failed["id"]
    assert row["error"] == "500 boom"


def test_scheduled_detection_runs_once_per_tick_and_emits_rows_as_matches(
    make_app, sink, cfg, isolated_nats, tmp_path, monkeypatch
) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa

    from tarn import runtime, scheduled

    folder = tmp_path / "cfg" / "detections" / "many_regions"
    folder.mkdir(parents=True)
    (folder / "detection.yml").write_text(
        "id: many_regions\nname: User active in many regions\nseverity: medium\nschedule: '*/5 * * * *'\n"
        "query: |\n  SELECT user.name AS dedupe, count(DISTINCT cloud.region) AS regions, max(ts) AS ts\n"
        "  FROM aws_cloudtrail GROUP BY user.name HAVING count(DISTINCT cloud.region) >= 2\n"
        "tests: []\n"
    )
    monkeypatch.setenv("TARN_CONFIG_DIR", str(tmp_path / "cfg"))
    runtime.reset_context()
    schema = pa.schema([
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("user", pa.struct([pa.field("name", pa.string())])),
        pa.field("cloud", pa.struct([pa.field("region", pa.string())])),
    ])  # fmt: skip
    rows = [("alice", "us-east-1"), ("alice", "eu-west-1"), ("bob", "us-east-1")]
    data = [
        {"ts": datetime(2026, 11, 20, i, tzinfo=UTC), "user": {"name": u}, "cloud": {"region": r}}
        for i, (u, r) in enumerate(rows)
    ]
    Lake(config.get()).commit("aws_cloudtrail", pa.Table.from_pylist(data, schema=schema), "seed")
    now = datetime(2026, 11, 24, 6, 7, 30, tzinfo=UTC)
    ctx = runtime.context()
    report = {r["detection"]: r for r in scheduled.run_due(ctx, now)}
    assert report["many_regions"] == {
        "detection": "many_regions",
        "tick": "2026-11-24T06:05:00+00:00",
        "matches": 1,
        "engine": "duckdb",
    }
    # Built-in scheduled detections over tables that do not exist yet are skipped, not failed.
    assert all(r["engine"].startswith("skipped") for k, r in report.items() if k != "many_regions")
    assert scheduled.run_due(ctx, now) == []  # the same tick again: nothing
    (matched,) = sink.of_type(events.RULE_MATCHED)
    (match,) = event_data(matched)["matches"]
    assert match["dedupe"] == "alice" and match["context"]["regions"] == 2
    assert match["ts"] == "2026-11-20T01:00:00+00:00"
    # The next tick runs again (and the PingSource entry point does the same work).
    assert (
        post_event(
            make_app("scheduled_detections"),
            events.make_event("dev.knative.sources.ping", "ping", {}, id_="p1"),
            "binary",
        ).status_code
        == 200
    )
