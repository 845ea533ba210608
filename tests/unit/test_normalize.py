import gzip
import io
import json
from pathlib import Path

import pytest
import zstandard

from tarn import logsources
from tarn.exceptions import UnknownLogSourceError
from tarn.normalize import normalize, parse_ts
from tests.conftest import SAMPLES

SOURCE = logsources.get("aws_cloudtrail")


def run(data: bytes, batch: int = 50_000):
    return list(normalize(io.BytesIO(data), SOURCE, "ing-1", batch))


def record(**over):
    base = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-20T01:02:03Z",
        "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "81.2.69.142",
        "userIdentity": {
            "type": "Root",
            "principalId": "123456789012",
            "accountId": "123456789012",
        },
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "No"},
        "recipientAccountId": "123456789012",
        "eventID": "e-1",
    }
    base.update(over)
    return base


def test_unknown_log_source_names_the_known_ones() -> None:
    with pytest.raises(UnknownLogSourceError, match="aws_cloudtrail"):
        logsources.get("nope")


def test_cloudtrail_record_maps_to_ecs() -> None:
    (chunk,) = run(json.dumps({"Records": [record()]}).encode())
    row = chunk.tables["aws_cloudtrail"].to_pylist()[0]
    assert row["ts"].isoformat() == "2026-11-20T01:02:03+00:00"
    assert row["event"]["action"] == "ConsoleLogin"
    assert row["event"]["outcome"] == "success"
    assert row["event"]["id"] == "e-1"
    assert row["user"]["name"] == "root"
    assert row["source"]["ip"] == "81.2.69.142"
    assert row["cloud"] == {
        "provider": "aws",
        "region": "us-east-1",
        "account": {"id": "123456789012"},
    }
    assert row["aws"]["cloudtrail"]["console_login"]["mfa_used"] is False
    assert row["related"]["ip"] == ["81.2.69.142"]
    assert row["related"]["user"] == ["root"]
    assert row["tarn"] == {
        "log_source": "aws_cloudtrail",
        "table": "aws_cloudtrail",
        "ingest_id": "ing-1",
    }
    assert json.loads(row["event"]["original"])["eventID"] == "e-1"


def test_service_source_address_is_not_an_ip_and_target_user_is_kept() -> None:
    rec = record(
        eventName="CreateAccessKey",
        eventSource="iam.amazonaws.com",
        sourceIPAddress="cloudformation.amazonaws.com",
        userIdentity={"type": "IAMUser", "userName": "bob"},
        requestParameters={"userName": "carol"},
        responseElements=None,
    )
    row = run(json.dumps(rec).encode())[0].tables["aws_cloudtrail"].to_pylist()[0]
    assert row["source"]["ip"] is None
    assert row["source"]["address"] == "cloudformation.amazonaws.com"
    assert row["user"]["target"]["name"] == "carol"
    assert row["related"]["user"] == ["bob", "carol"]
    assert row["event"]["type"] == ["creation"]


def test_sample_files_land_whole() -> None:
    total = 0
    for path in sorted(SAMPLES.glob("*.json.gz")):
        with path.open("rb") as f:
            chunks = list(normalize(f, SOURCE, "s", 50_000))
        assert chunks[-1].final
        assert sum(c.sideline.num_rows for c in chunks) == 0
        total += sum(c.rows for c in chunks)
    assert total == 1200


def test_bad_lines_are_sidelined_with_reason_and_good_ones_land() -> None:
    (chunk,) = run((SAMPLES / "bad_lines.ndjson").read_bytes())
    assert chunk.rows == 7
    side = chunk.sideline.to_pylist()
    assert [s["stage"] for s in side] == ["parse", "transform", "validate"]
    assert "invalid JSON" in side[0]["reason"]
    assert "got list" in side[1]["reason"]
    assert "not-a-time" in side[2]["reason"]
    raw_lines = (SAMPLES / "bad_lines.ndjson").read_text().splitlines()
    assert side[0]["raw"] == raw_lines[side[0]["position"]]
    assert all(s["tarn"]["log_source"] == "aws_cloudtrail" for s in side)


def test_value_that_does_not_fit_the_schema_is_sidelined_alone() -> None:
    good = record(eventID="good")
    bad = record(eventID="bad", awsRegion={"nested": "object"})  # region must be a string
    (chunk,) = run("\n".join(json.dumps(r) for r in (good, bad, good)).encode())
    assert chunk.rows == 2
    (side,) = chunk.sideline.to_pylist()
    assert side["stage"] == "validate" and "schema" in side["reason"] and side["position"] == 1


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lambda b: zstandard.ZstdCompressor().compress(b)],
    ids=["gzip", "zstd"],
)
def test_compression_is_detected_from_content(compress) -> None:
    data = compress(json.dumps({"Records": [record(), record(eventID="e-2")]}).encode())
    assert run(data)[0].rows == 2


def test_large_objects_are_cut_into_chunks() -> None:
    data = "\n".join(json.dumps(record(eventID=str(i))) for i in range(25)).encode()
    chunks = run(data, batch=10)
    assert [c.rows for c in chunks] == [10, 10, 5]
    assert [c.final for c in chunks] == [False, False, True]
    assert [c.index for c in chunks] == [0, 1, 2]


def test_corrupt_gzip_keeps_what_was_read_and_sidelines_the_rest() -> None:
    data = gzip.compress(
        ("\n".join(json.dumps(record(eventID=str(i))) for i in range(50))).encode()
    )
    chunks = run(data[: len(data) // 2])
    assert chunks[-1].final
    side = chunks[-1].sideline.to_pylist()
    assert any(s["stage"] == "parse" and "unreadable" in s["reason"] for s in side)


def test_empty_object_yields_one_final_empty_chunk() -> None:
    (chunk,) = run(b"")
    assert chunk.final and chunk.rows == 0 and chunk.tables == {}


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-11-20T01:02:03Z", "2026-11-20T01:02:03+00:00"),
        ("2026-11-20T03:02:03+02:00", "2026-11-20T01:02:03+00:00"),
        ("2026-11-20 01:02:03", "2026-11-20T01:02:03+00:00"),
        (1795136523, "2026-11-20T01:02:03+00:00"),
        (1795136523000, "2026-11-20T01:02:03+00:00"),
    ],
)
def test_parse_ts(value, iso) -> None:
    assert parse_ts(value).isoformat() == iso


@pytest.mark.parametrize("value", [None, "yesterday", True, [1]])
def test_parse_ts_rejects(value) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_ts(value)


def test_user_log_source_replaces_builtin(tmp_path: Path) -> None:
    folder = tmp_path / "log_sources" / "aws_cloudtrail"
    folder.mkdir(parents=True)
    (folder / "log_source.yml").write_text(
        "name: aws_cloudtrail\ningest: {format: ndjson}\nschema: {fields: [{name: msg, type: string}]}\n"
    )
    (folder / "transform.py").write_text(
        "def transform(r):\n    return {'ts': r['t'], 'msg': r['m']}\n"
    )
    source = logsources.get("aws_cloudtrail", str(tmp_path))
    (chunk,) = list(
        normalize(io.BytesIO(b'{"t": "2026-01-01T00:00:00Z", "m": "hi"}\n'), source, "i")
    )
    assert chunk.tables["aws_cloudtrail"].to_pylist()[0]["msg"] == "hi"
