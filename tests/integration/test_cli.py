"""`tarn` commands against a running embedded stack, as a person or a script would use them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tarn import config
from tarn.cli import main
from tests.conftest import SAMPLES
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def tarn(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    for k, v in stack.environ.items():
        if k.startswith("TARN_"):
            monkeypatch.setenv(k, v)
    config.reset()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    yield run
    config.reset()


def test_ingest_wait_then_query_and_alerts(tarn) -> None:
    path = next(
        p for p in sorted(SAMPLES.glob("*.json.gz")) if "us-east-1_20261120T0315Z" in p.name
    )
    out = json.loads(tarn("ingest", "--wait", "--json", "aws_cloudtrail", str(path)).output)
    assert out["done"]["records"] == 278 and out["done"]["batches"] == 1
    rows = json.loads(tarn("query", "--json", "SELECT count(*) AS n FROM aws_cloudtrail").output)
    assert rows == [{"n": 278}]
    table = tarn(
        "query",
        "SELECT event.action, count(*) AS n FROM aws_cloudtrail GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
    ).output
    assert "action" in table and "3 rows" in table


def test_alerts_json_lists_alerts(tarn, stack: Stack) -> None:
    stack.idle()
    alerts = json.loads(tarn("alerts", "--json").output)
    assert {a["detection"] for a in alerts} >= {"aws_root_console_login"}
    assert all({"alert_id", "severity", "title", "match_count"} <= set(a) for a in alerts)


def test_query_errors_exit_non_zero_with_the_engine_message(tarn) -> None:
    result = tarn("query", "SELECT nope FROM aws_cloudtrail", ok=False)
    assert (
        result.exit_code == 1
        and "DuckDB rejected the query" in result.output
        and "nope" in result.output
    )
    result = tarn("query", "SELECT FROM WHERE", ok=False)
    assert result.exit_code == 1 and "line 1" in result.output


def test_ingest_to_unknown_source_says_which_exist(tarn, tmp_path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    result = tarn("ingest", "nope", str(f), ok=False)
    assert (
        result.exit_code == 1 and "HTTP 404" in result.output and "aws_cloudtrail" in result.output
    )


def test_dev_status_and_dlq(tarn) -> None:
    status = tarn("dev", "status").output
    assert (
        "broker" in status
        and "lake_writer" in status
        and "scheduler" in status
        and "down" not in status
    )
    assert json.loads(tarn("dlq", "--json").output) == []


def test_detections_test_prints_a_table(tarn) -> None:
    out = tarn("detections", "test").output
    assert "aws_root_console_login" in out and "FAIL" not in out and " passed, 0 failed" in out
