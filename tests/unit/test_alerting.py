import hashlib
import hmac
import json

from tarn.alerting import _signature, apply_matches

RULE = {
    "detection": "d",
    "name": "D",
    "threshold": 3,
    "window_minutes": 10,
    "tags": ["attack.t1110"],
}


def m(ts: str, n: int = 0) -> dict:
    return {
        "ts": ts,
        "title": f"t{n}",
        "severity": "high",
        "context": {"n": n},
        "event_id": f"e{n}",
        "dedupe": "k",
    }


def outputs(state: dict, event_id: str) -> list:
    return [(action, alert["match_count"]) for _, _, action, alert in state["applied"][event_id]]


def test_alert_activates_at_threshold_then_updates() -> None:
    s = apply_matches(
        None,
        "ev1",
        RULE,
        "k",
        [m("2026-11-20T00:00:00+00:00", 1), m("2026-11-20T00:01:00+00:00", 2)],
    )
    assert outputs(s, "ev1") == []  # 2 < threshold 3: no alert yet
    s = apply_matches(s, "ev2", RULE, "k", [m("2026-11-20T00:02:00+00:00", 3)])
    assert outputs(s, "ev2") == [("created", 3)]
    s = apply_matches(s, "ev3", RULE, "k", [m("2026-11-20T00:03:00+00:00", 4)])
    assert outputs(s, "ev3") == [("updated", 4)]
    assert s["current"]["version"] == 2
    assert s["current"]["record_refs"] == ["e1", "e2", "e3", "e4"]
    assert s["current"]["context"] == {"n": 4}


def test_redelivered_event_changes_nothing() -> None:
    s = apply_matches(None, "ev1", {**RULE, "threshold": 1}, "k", [m("2026-11-20T00:00:00+00:00")])
    assert (
        apply_matches(json.loads(json.dumps(s)), "ev1", RULE, "k", [m("2026-11-20T00:00:00+00:00")])
        is None
    )


def test_match_after_the_window_starts_a_new_alert() -> None:
    rule = {**RULE, "threshold": 1}
    s = apply_matches(None, "ev1", rule, "k", [m("2026-11-20T00:00:00+00:00")])
    first = s["current"]["alert_id"]
    s = apply_matches(
        s, "ev2", rule, "k", [m("2026-11-20T00:10:00+00:00")]
    )  # window end is inclusive
    assert s["current"]["alert_id"] == first and outputs(s, "ev2") == [("updated", 2)]
    s = apply_matches(s, "ev3", rule, "k", [m("2026-11-20T00:10:01+00:00")])
    assert s["current"]["alert_id"] != first
    assert outputs(s, "ev3") == [("created", 1)]


def test_one_event_spanning_two_windows_reports_both_alerts() -> None:
    rule = {**RULE, "threshold": 1}
    s = apply_matches(
        None,
        "ev1",
        rule,
        "k",
        [m("2026-11-20T01:00:00+00:00", 2), m("2026-11-20T00:00:00+00:00", 1)],
    )
    assert outputs(s, "ev1") == [("created", 1), ("created", 1)]


def test_below_threshold_group_expires_with_its_window() -> None:
    s = apply_matches(
        None, "ev1", RULE, "k", [m("2026-11-20T00:00:00+00:00"), m("2026-11-20T00:01:00+00:00")]
    )
    s = apply_matches(s, "ev2", RULE, "k", [m("2026-11-20T00:30:00+00:00")])
    assert s["current"]["match_count"] == 1 and outputs(s, "ev2") == []


def test_applied_memory_is_bounded() -> None:
    s = None
    for i in range(300):
        s = apply_matches(
            s,
            f"ev{i}",
            {**RULE, "threshold": 1, "window_minutes": 100000},
            "k",
            [m("2026-11-20T00:00:00+00:00")],
        )
    assert len(s["applied"]) == 256 and "ev299" in s["applied"] and "ev0" not in s["applied"]
    assert s["current"]["match_count"] == 300
    assert len(s["current"]["record_refs"]) == 100


def test_webhook_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    want = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert _signature("s3cret", "1700000000", b"{}") == f"sha256={want}"
