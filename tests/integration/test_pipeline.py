"""The whole chain over real nats-server and real processes: exact counts, crashes, dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from tarn import _proc, deadletters
from tests.conftest import SAMPLES
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

EXPECTED_ALERTS = {
    "aws_root_console_login": 1,
    "aws_cloudtrail_stopped": 2,
    "aws_access_key_for_other_user": 1,
    "aws_admin_policy_attached": 1,
    "aws_s3_bucket_policy_public": 1,
    "aws_console_login_brute_force": 6,
}


def test_samples_land_exactly_and_raise_exactly_the_expected_alerts(stack: Stack) -> None:
    results = [stack.ingest(p) for p in sorted(SAMPLES.glob("*.json.gz"))]
    bad = stack.ingest(SAMPLES / "bad_lines.ndjson")
    assert sum(r.good for r in results) == 1200
    assert (bad.good, bad.sidelined) == (7, 3)
    stack.idle()

    rows = stack.query("SELECT count(*) AS n, count(DISTINCT event.id) AS ids FROM aws_cloudtrail")
    assert rows == [{"n": 1207, "ids": 1207}]
    side = stack.query(
        "SELECT stage, count(*) AS n FROM tarn_sideline GROUP BY stage ORDER BY stage"
    )
    assert side == [
        {"stage": "parse", "n": 1},
        {"stage": "transform", "n": 1},
        {"stage": "validate", "n": 1},
    ]

    alerts = stack.query("SELECT detection, match_count, severity FROM tarn_alerts")
    assert {a["detection"]: a["match_count"] for a in alerts} == EXPECTED_ALERTS
    assert len(alerts) == len(EXPECTED_ALERTS)

    delivered = stack.receiver.alerts()
    assert stack.receiver.rejected == []
    assert {a["detection"]: a["match_count"] for a in delivered.values()} == EXPECTED_ALERTS
    # Each alert update reached the webhook exactly once.
    keys = Counter(r.headers["idempotency-key"] for r in stack.receiver.received)
    assert max(keys.values()) == 1


def test_reingesting_the_same_object_adds_rows_but_not_alerts(stack: Stack) -> None:
    before = stack.query("SELECT count(*) AS n FROM tarn_alerts")[0]["n"]
    path = sorted(SAMPLES.glob("*.json.gz"))[0]
    stack.ingest(path)  # a second, distinct upload of the same file: a new ingest
    stack.idle()
    after = stack.query("SELECT count(*) AS n FROM tarn_alerts")[0]["n"]
    assert after == before  # matches fold into the open alerts (dedupe window)


def _record(i: int, marker: str) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2026-11-22T00:{i // 60:02d}:{i % 60:02d}Z",
        "eventName": "GetCallerIdentity",
        "eventSource": "sts.amazonaws.com",
        "userIdentity": {"type": "IAMUser", "userName": marker},
        "sourceIPAddress": "81.2.69.142",
        "eventID": f"{marker}-{i}",
    }


@pytest.mark.parametrize("point", ["lake_writer.before_commit", "lake_writer.after_commit"])
def test_killing_the_lake_writer_mid_batch_leaves_every_record_once(
    stack: Stack, point: str, tmp_path
) -> None:
    marker_file = tmp_path / "paused"
    marker = point.replace(".", "-")
    body = "\n".join(json.dumps(_record(i, marker)) for i in range(500)).encode()
    writer = stack.dev.managed("lake_writer")
    _proc.stop(writer)
    stack.dev.environ.update(
        {"TARNTEST_PAUSE_AT": point, "TARNTEST_PAUSE_MARKER": str(marker_file)}
    )
    try:
        stack.dev.start_function("lake_writer")
    finally:
        del stack.dev.environ["TARNTEST_PAUSE_AT"], stack.dev.environ["TARNTEST_PAUSE_MARKER"]

    import threading

    result: dict = {}
    waiter = threading.Thread(
        target=lambda: result.update(progress=stack.ingest(body, timeout=180))
    )
    waiter.start()
    deadline = time.monotonic() + 60
    while not marker_file.exists():
        assert time.monotonic() < deadline, "the lake writer never reached the pause point"
        time.sleep(0.05)
    _proc.kill(writer)  # SIGKILL, as a crash: no cleanup, no ack
    stack.dev.start_function("lake_writer")  # a fresh process, without the pause
    waiter.join(timeout=200)
    assert result["progress"].done
    rows = stack.query(
        f"SELECT count(*) AS n, count(DISTINCT event.id) AS ids FROM aws_cloudtrail WHERE user.name = '{marker}'"
    )
    assert rows == [{"n": 500, "ids": 500}]


def test_failing_destination_is_retried_then_dead_lettered_and_replayable(stack: Stack) -> None:
    # Every webhook call fails for a while: the broker retries with backoff, then dead-letters.
    stack.receiver.fail_first = stack.receiver.requests + 10_000
    record = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-23T10:00:00Z",
        "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com",
        "userIdentity": {"type": "Root", "principalId": "999"},
        "recipientAccountId": "999999999999",
        "sourceIPAddress": "89.160.20.128",
        "responseElements": {"ConsoleLogin": "Success"},
        "eventID": "dlq-root-1",
    }
    stack.ingest(json.dumps(record).encode())
    deadline = time.monotonic() + 240
    letters: list = []
    while time.monotonic() < deadline and not letters:
        letters = [
            d
            for d in asyncio.run(deadletters.list_dead_letters(stack.cfg))
            if d["trigger"] == "alert-forwarder-alert"
        ]
        time.sleep(1)
    assert letters, "the failing delivery never reached the dead-letter stream"
    assert letters[0]["error"].startswith("500")
    calls_before = stack.receiver.requests
    assert calls_before > 6  # the first attempt plus the Trigger's 6 retries

    stack.receiver.fail_first = 0
    replayed = asyncio.run(deadletters.replay(stack.cfg, [letters[0]["seq"]]))
    assert replayed == [letters[0]["seq"]]
    stack.idle()
    got = [r for r in stack.receiver.received if r.body["alert"]["dedupe"] == "999999999999"]
    assert len(got) == 1 and got[0].body["action"] == "created"
    assert not any(
        d["seq"] == letters[0]["seq"] for d in asyncio.run(deadletters.list_dead_letters(stack.cfg))
    )
