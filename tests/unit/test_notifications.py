from tarn import config, events
from tarn.notifications import raw_events


def note(
    key: str, etag: str = "abc", bucket: str = "tarn-raw", name: str = "s3:ObjectCreated:Put"
) -> dict:
    return {
        "EventName": name,
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventName": name,
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": key, "size": 10, "eTag": etag},
                },
            }
        ],
    }


def test_object_under_raw_becomes_a_raw_object_event() -> None:
    cfg = config.load({})
    (ev,), problems = raw_events(cfg, note("raw/aws_cloudtrail/2026/a%20b.json.gz"))
    assert problems == []
    assert ev["type"] == events.OBJECT_RAW
    data = ev.get_data()
    assert data["key"] == "raw/aws_cloudtrail/2026/a b.json.gz"  # keys arrive URL-encoded
    assert data["log_source"] == "aws_cloudtrail" and data["bucket"] == "tarn-raw"
    assert data["ingest_id"] == ev["id"]


def test_repeated_notification_for_the_same_object_has_the_same_id() -> None:
    cfg = config.load({})
    a = raw_events(cfg, note("raw/aws_cloudtrail/x.json"))[0][0]
    b = raw_events(cfg, note("raw/aws_cloudtrail/x.json"))[0][0]
    c = raw_events(cfg, note("raw/aws_cloudtrail/x.json", etag="new-content"))[0][0]
    assert a["id"] == b["id"] != c["id"]


def test_other_prefixes_buckets_and_event_kinds_are_ignored() -> None:
    cfg = config.load({})
    assert raw_events(cfg, note("ingest/aws_cloudtrail/x.json")) == ([], [])
    assert raw_events(cfg, note("raw/aws_cloudtrail/x.json", bucket="other")) == ([], [])
    assert raw_events(cfg, note("raw/aws_cloudtrail/x.json", name="s3:ObjectRemoved:Delete")) == (
        [],
        [],
    )


def test_unknown_log_source_is_reported_not_dropped() -> None:
    cfg = config.load({})
    evs, problems = raw_events(cfg, note("raw/nope/x.json"))
    assert evs == [] and "unknown log source 'nope'" in problems[0]
    evs, problems = raw_events(cfg, note("raw/x.json"))
    assert evs == [] and "raw/<log_source>/" in problems[0]
