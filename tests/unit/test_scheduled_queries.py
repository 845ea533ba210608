"""The scheduled SQL detections, run on DuckDB over a small lake.

A query detection has no detect(record), so its inline `tests:` are empty; its firing and
near-miss cases are here. Raw log lines go through the real log sources (normalize) into the
lake, so the queries meet the tables' real column types and nesting. Times are relative to
now, because the queries look back from current_timestamp.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from tarn import config, logsources, query
from tarn.detection import Detection, load_all, load_detection
from tarn.lake import Lake
from tarn.normalize import normalize

DETECTIONS = Path(__file__).resolve().parents[2] / "detections"
NOW = datetime.now(UTC).replace(microsecond=0)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def ingest(cfg: Any, source: str, lines: list[str]) -> None:
    """Normalize raw lines with a built-in log source and commit every table to the lake."""
    src = logsources.builtin(source)
    raw = io.BytesIO(("\n".join(lines) + "\n").encode())
    lake = Lake(cfg)
    committed = 0
    for chunk in normalize(raw, src, f"test-{source}"):
        assert chunk.sideline.num_rows == 0, chunk.sideline.to_pylist()
        for table, data in chunk.tables.items():
            lake.commit(table, data, f"test-{source}-{chunk.index}-{table}")
            committed += data.num_rows
    assert committed == len(lines)


def detection(name: str) -> Detection:
    det = load_detection(DETECTIONS / name)
    assert det.query and det.schedule
    return det


def run(cfg: Any, det: Detection) -> list[dict[str, Any]]:
    assert det.query is not None
    result = query.run(cfg, det.query)
    assert result.engine == "duckdb"
    return result.as_dicts()


@pytest.fixture
def cfg(clean_env: Path) -> Any:
    return config.load()


def test_every_scheduled_detection_is_covered_here_and_reads_its_tables() -> None:
    scheduled = [d for d in load_all([DETECTIONS]) if d.query]
    assert {d.id for d in scheduled} == {
        "linux_ssh_login_after_failures",
        "okta_user_multiple_countries",
    }
    for det in scheduled:
        tree = sqlglot.parse_one(det.query, read="trino")
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        read = {t.name for t in tree.find_all(exp.Table)} - ctes
        assert read == set(det.tables), det.id
        assert {"dedupe", "title", "ts"} <= set(tree.named_selects), det.id
        assert all(tag.startswith("attack.") for tag in det.tags)


# -- SSH: failures, then a success from the same address ------------------------------------


def syslog(at: datetime, host: str, message: str, pid: int = 4242) -> str:
    return f"<38>1 {at.isoformat()} {host} sshd {pid} - - {message}"


def failed(at: datetime, user: str, ip: str, host: str = "bastion-1") -> str:
    return syslog(at, host, f"Failed password for {user} from {ip} port 52207 ssh2")


def accepted(at: datetime, user: str, ip: str, host: str = "bastion-1") -> str:
    return syslog(at, host, f"Accepted password for {user} from {ip} port 52225 ssh2")


def test_ssh_login_after_failures(cfg: Any) -> None:
    lines = [
        # fires: a spray of five lines (one "repeated 2 times": six attempts) then a success
        failed(ago(30), "root", "203.0.113.7"),
        syslog(
            ago(29.9),
            "bastion-1",
            "Failed password for invalid user admin from 203.0.113.7 port 52206 ssh2",
        ),
        failed(ago(29.8), "test", "203.0.113.7", host="web-1"),
        syslog(
            ago(29.7),
            "bastion-1",
            "message repeated 2 times: [ Failed password for root from 203.0.113.7 port 52211 ssh2]",
        ),
        failed(ago(29.6), "deploy", "203.0.113.7"),
        accepted(ago(29.5), "deploy", "203.0.113.7"),
        # near miss: two typos, then a success
        failed(ago(20), "alice", "10.20.4.15", host="web-1"),
        failed(ago(19.9), "alice", "10.20.4.15", host="web-1"),
        accepted(ago(19.8), "alice", "10.20.4.15", host="web-1"),
        # near miss: a brute force that never gets in
        *[failed(ago(15 - i / 10), "root", "198.51.100.9") for i in range(8)],
        # near miss: the failures were more than an hour before the success
        *[failed(ago(100 - i / 10), "oracle", "192.0.2.44") for i in range(6)],
        accepted(ago(10), "oracle", "192.0.2.44"),
        # near miss: failures from one address, the success from another
        *[failed(ago(12 - i / 10), "bob", "192.0.2.50") for i in range(6)],
        accepted(ago(11), "bob", "192.0.2.51"),
        # near miss: an old success after failures, outside the last hour
        *[failed(ago(112 - i / 10), "git", "192.0.2.60") for i in range(6)],
        accepted(ago(110), "git", "192.0.2.60"),
    ]
    ingest(cfg, "linux_auth", lines)
    rows = run(cfg, detection("linux_ssh_login_after_failures"))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["source_ip"] == "203.0.113.7"
    assert row["user_name"] == "deploy"
    assert row["host"] == "bastion-1"
    assert row["failures"] == 6
    assert row["users_tried"] == 4  # root, admin, test, deploy
    assert row["hosts_tried"] == 2
    assert row["dedupe"] == "203.0.113.7|bastion-1|deploy"
    assert row["ts"] == ago(29.5)
    assert "after 6 failed attempts" in row["title"]


# -- Okta: one user, several countries within an hour ----------------------------------------


def okta_event(
    at: datetime,
    user: str,
    country: str,
    ip: str,
    event_type: str = "user.session.start",
    result: str = "SUCCESS",
) -> str:
    return json.dumps(
        {
            "uuid": f"{user}-{at.timestamp()}-{event_type}",
            "published": at.isoformat().replace("+00:00", "Z"),
            "eventType": event_type,
            "displayMessage": event_type,
            "severity": "INFO",
            "actor": {"id": f"id-{user}", "type": "User", "alternateId": user, "displayName": user},
            "client": {
                "ipAddress": ip,
                "geographicalContext": {"country": country, "city": None, "state": None},
            },
            "outcome": {"result": result, "reason": None},
            "target": [],
        }
    )


def test_okta_user_multiple_countries(cfg: Any) -> None:
    lines = [
        # fires: China, then the United States 35 minutes later
        okta_event(ago(50), "carol@example.com", "China", "175.16.199.37"),
        okta_event(
            ago(40), "carol@example.com", "China", "175.16.199.37", "user.account.privilege.grant"
        ),
        okta_event(ago(15), "carol@example.com", "United States", "216.160.83.56"),
        # near miss: one country all along
        okta_event(ago(55), "dave@example.com", "United Kingdom", "81.2.69.142"),
        okta_event(ago(25), "dave@example.com", "United Kingdom", "81.2.69.143"),
        # near miss: failed sign-ins from a sprayer abroad do not count against the target
        okta_event(ago(45), "alice@example.com", "Sweden", "89.160.20.128"),
        okta_event(ago(30), "alice@example.com", "Bhutan", "67.43.156.12", result="FAILURE"),
        okta_event(ago(10), "alice@example.com", "Sweden", "89.160.20.128"),
        # near miss: two countries, but 80 minutes apart
        okta_event(ago(110), "bob@example.com", "Germany", "2.125.160.216"),
        okta_event(ago(30), "bob@example.com", "United Kingdom", "2.125.160.217"),
    ]
    ingest(cfg, "okta_system", lines)
    rows = run(cfg, detection("okta_user_multiple_countries"))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["user_name"] == "carol@example.com"
    assert row["dedupe"] == "carol@example.com"
    assert row["countries"] == 2
    assert row["country_list"] == "China, United States"
    assert row["ts"] == ago(15)
    assert (
        row["title"]
        == "Okta user carol@example.com active from China, United States within an hour"
    )
