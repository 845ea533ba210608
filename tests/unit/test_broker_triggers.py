from pathlib import Path

import pytest

from tarn import events
from tarn.broker import Destination, TriggerError, load_triggers, parse_duration, parse_trigger

BASE = {
    "apiVersion": "eventing.knative.dev/v1",
    "kind": "Trigger",
    "metadata": {"name": "t1"},
    "spec": {
        "broker": "tarn",
        "filter": {"attributes": {"type": "dev.tarn.x.v1", "source": "/tarn/a"}},
        "subscriber": {
            "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "svc"}
        },
        "delivery": {
            "retry": 3,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.5S",
            "deadLetterSink": {"uri": "http://dl/"},
        },
    },
}


def test_parse_trigger_reads_filter_subscriber_and_delivery() -> None:
    t = parse_trigger(BASE, "f.yaml")
    assert t.name == "t1" and t.broker == "tarn"
    assert t.subscriber == Destination(kind="Service", name="svc")
    assert t.retry == 3
    assert t.dead_letter == Destination(uri="http://dl/")
    assert t.backoff(1) == 0.5 and t.backoff(3) == 1.5  # linear: delay * n
    assert t.type_filter is None  # filters on source too


def test_exponential_backoff_doubles() -> None:
    spec = {
        **BASE,
        "spec": {
            **BASE["spec"],
            "delivery": {"backoffPolicy": "exponential", "backoffDelay": "PT1S"},
        },
    }
    t = parse_trigger(spec)
    assert [t.backoff(n) for n in (1, 2, 3)] == [2, 4, 8]


def test_attribute_filter_is_exact_match_on_all_attributes() -> None:
    t = parse_trigger(BASE)
    assert t.matches({"type": "dev.tarn.x.v1", "source": "/tarn/a", "id": "1"})
    assert not t.matches({"type": "dev.tarn.x.v1", "source": "/tarn/b"})
    assert not t.matches({"source": "/tarn/a"})


def test_subscriptions_api_filters_override_filter() -> None:
    spec = {
        **BASE,
        "spec": {
            **BASE["spec"],
            "filters": [{"prefix": {"type": "dev.tarn."}}, {"not": {"exact": {"source": "/x"}}}],
        },
    }
    t = parse_trigger(spec)
    assert t.matches({"type": "dev.tarn.other.v1", "source": "/tarn/zzz"})
    assert not t.matches({"type": "dev.tarn.other.v1", "source": "/x"})
    assert not t.matches({"type": "com.example", "source": "/y"})
    with pytest.raises(TriggerError, match="cesql"):
        parse_trigger(
            {**BASE, "spec": {**BASE["spec"], "filters": [{"cesql": "type = 'x'"}]}}
        ).matches({})


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT0.5S", 0.5), ("PT2M", 120), ("PT1H1M1S", 3661), ("P1D", 86400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0.5s", "PT", "P", "T1S", "PT-1S"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(TriggerError, match="ISO 8601"):
        parse_duration(text)


def test_errors_name_the_file_the_trigger_and_the_field() -> None:
    bad = {**BASE, "spec": {**BASE["spec"], "delivery": {"backoffDelay": "soon"}}}
    with pytest.raises(TriggerError, match=r"f.yaml: Trigger 't1': spec.delivery.backoffDelay"):
        parse_trigger(bad, "f.yaml")
    with pytest.raises(TriggerError, match="spec.subscriber is required"):
        parse_trigger({**BASE, "spec": {}}, "f.yaml")


def test_destination_resolution() -> None:
    services = {"svc": "http://127.0.0.1:9000"}
    assert Destination(kind="Service", name="svc").resolve(services) == "http://127.0.0.1:9000"
    assert (
        Destination(kind="Service", name="svc", uri="/x").resolve(services)
        == "http://127.0.0.1:9000/x"
    )
    with pytest.raises(TriggerError, match="known: svc"):
        Destination(kind="Service", name="nope").resolve(services)


def test_project_triggers_route_every_event_type_to_its_function() -> None:
    routes = {(t.type_filter, t.subscriber.name) for t in load_triggers()}
    assert routes == {
        (events.OBJECT_RAW, "transformer"),
        (events.BATCH_NORMALIZED, "lake-writer"),
        (events.BATCH_NORMALIZED, "detector"),
        (events.RULE_MATCHED, "alert-manager"),
        (events.ALERT, "alert-forwarder"),
        (events.ALERT, "lake-writer"),
    }
    assert all(
        t.dead_letter and t.dead_letter.name == "dead-letter" and t.retry >= 3
        for t in load_triggers()
    )


def test_load_triggers_reads_multi_document_files_and_ignores_other_kinds(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: a}\nspec: {subscriber: {uri: 'http://x'}}\n"
    )
    assert [t.name for t in load_triggers(tmp_path)] == ["a"]
    (tmp_path / "y.yaml").write_text(
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: a}\nspec: {subscriber: {uri: 'http://x'}}\n"
    )
    with pytest.raises(TriggerError, match="duplicate"):
        load_triggers(tmp_path)
