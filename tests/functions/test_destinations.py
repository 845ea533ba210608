"""alert_forwarder delivering real alert CloudEvents to real local Slack, PagerDuty and SMTP peers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tarn import alerting, events, runtime
from tarn.destinations import _threads
from tarn.destinations.exceptions import DeliveryError, ThreadBusyError
from tarn.peers.pagerduty import PagerDutyPeer
from tarn.peers.slack import SlackPeer
from tarn.peers.smtp import SmtpPeer
from tests.conftest import event_data
from tests.functions.conftest import MODES, post_event

ALERT_ID = "20261120T010000-5f1c0a9e2b7d43a8c6e1"
SLACK_TOKEN = "xoxb-1111-2222-abcdefghijkl"
ROUTING_KEY = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y00"  # 32 characters
SENDER = "tarn alerts <alerts@example.org>"


def alert_event(
    version: int = 1, *, alert_id: str = ALERT_ID, destinations: list[str] | None = None
):
    body = {
        "alert_id": alert_id, "detection": "aws_root_console_login", "name": "Root console login",
        "severity": "high", "title": "Root console login from 67.43.156.12", "dedupe": "123456789012",
        "first_matched": "2026-11-20T01:00:00+00:00",
        "last_matched": f"2026-11-20T01:{version:02d}:00+00:00",
        "match_count": version, "threshold": 1, "version": version,
        "context": {"source_ip": "67.43.156.12", "account": "123456789012"},
        "runbook": "https://runbooks.example.org/aws-root-login",
        "record_refs": [f"evt-{i}" for i in range(version)],
        "destinations": destinations or [], "tags": ["attack.t1078.004", "attack.initial_access"],
        "action": "created" if version == 1 else "updated",
    }  # fmt: skip
    return events.make_event(
        events.ALERT,
        "alert-manager",
        body,
        id_=events.derive_id(alert_id, version),
        subject=alert_id,
    )


@dataclass
class Peers:
    slack: SlackPeer
    pagerduty: PagerDutyPeer
    smtp: SmtpPeer

    def counts(self) -> tuple[int, int, int]:
        return len(self.slack.messages), len(self.pagerduty.events), len(self.smtp.mails)

    def nothing_refused(self) -> None:
        assert self.slack.rejected == []
        assert self.slack.warnings == []
        assert self.pagerduty.rejected == []
        assert self.smtp.rejected == []
        assert self.smtp.duplicates == []


@pytest.fixture
def peers(isolated_nats: str, sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peers]:
    slack, pagerduty, smtp = SlackPeer(token=SLACK_TOKEN), PagerDutyPeer(ROUTING_KEY), SmtpPeer()
    host, port = smtp.start()
    env = {
        "SOC_SLACK__TYPE": "slack",
        "SOC_SLACK__URL": slack.start(),
        "SOC_SLACK__TOKEN": SLACK_TOKEN,
        "SOC_SLACK__CHANNEL": "#soc-alerts",
        "ONCALL__TYPE": "pagerduty",
        "ONCALL__URL": pagerduty.start(),
        "ONCALL__ROUTING_KEY": ROUTING_KEY,
        "MAIL__TYPE": "email",
        "MAIL__HOST": host,
        "MAIL__PORT": str(port),
        "MAIL__FROM": SENDER,
        "MAIL__TO": "soc@example.org, cso@example.org",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"TARN_DESTINATIONS__{key}", value)
    runtime.reset_context()
    yield Peers(slack, pagerduty, smtp)
    slack.stop()
    pagerduty.stop()
    smtp.stop()


@pytest.mark.parametrize("mode", MODES)
def test_created_then_updated_reaches_each_destination_threaded(
    make_app, sink, peers: Peers, mode
) -> None:
    client = make_app("alert_forwarder")
    first, second = alert_event(1), alert_event(2)
    assert post_event(client, first, mode).status_code == 200
    assert post_event(client, second, mode).status_code == 200
    peers.nothing_refused()

    # Slack: one message in the channel, the update in its thread.
    (root,) = peers.slack.top_level()
    assert root.channel == peers.slack.channel_id("#soc-alerts")
    assert root.blocks[0]["type"] == "header" and "Root console login" in root.text
    (reply,) = peers.slack.replies(root.ts)
    assert reply.channel == root.channel
    assert reply.metadata == {
        "event_type": "tarn_alert",
        "event_payload": {
            "alert_id": ALERT_ID,
            "event_id": second["id"],
            "version": 2,
            "action": "updated",
        },
    }

    # PagerDuty: both accepted, one incident keyed by the alert id.
    assert [e["dedup_key"] for e in peers.pagerduty.events] == [ALERT_ID, ALERT_ID]
    assert [e["payload"]["severity"] for e in peers.pagerduty.events] == ["error", "error"]
    assert list(peers.pagerduty.incidents) == [ALERT_ID]
    assert len(peers.pagerduty.incidents[ALERT_ID].events) == 2

    # Email: Message-IDs from the event ids; the update replies to the first mail.
    created, updated = peers.smtp.mails
    assert created.message_id == f"<tarn.{first['id']}@example.org>"
    assert updated.message_id == f"<tarn.{second['id']}@example.org>"
    assert updated.message["In-Reply-To"] == created.message_id
    assert updated.message["References"] == created.message_id
    assert (
        created.message["Subject"] == "[tarn] [HIGH] Root console login from 67.43.156.12 (created)"
    )
    assert sorted(created.recipients) == ["cso@example.org", "soc@example.org"]
    assert "Matches:" in updated.text() and "2 (threshold 1)" in updated.text()

    audit = [event_data(e) for e in sink.of_type(events.ALERT_DELIVERED)]
    assert [sorted(a["destinations"]) for a in audit] == [["mail", "oncall", "soc_slack"]] * 2


def test_redelivered_events_are_never_sent_twice(make_app, sink, peers: Peers) -> None:
    client = make_app("alert_forwarder")
    for event in (alert_event(1), alert_event(1), alert_event(2), alert_event(1), alert_event(2)):
        for mode in MODES:
            assert post_event(client, event, mode).status_code == 200
    assert peers.counts() == (2, 2, 2)
    peers.nothing_refused()


def test_slack_refusal_fails_the_function_and_the_retry_delivers_once(
    make_app, sink, peers: Peers
) -> None:
    peers.slack.fail_next(error="fatal_error")  # HTTP 200 with ok: false
    client = make_app("alert_forwarder", testing=False)
    assert post_event(client, alert_event(1), "binary").status_code == 500
    # The other destinations were not held up by Slack.
    assert peers.counts() == (0, 1, 1)
    assert post_event(client, alert_event(1), "binary").status_code == 200
    assert peers.counts() == (1, 1, 1)
    assert post_event(client, alert_event(2), "binary").status_code == 200
    (root,) = peers.slack.top_level()
    assert len(peers.slack.replies(root.ts)) == 1
    peers.nothing_refused()


def test_pagerduty_outage_then_recovery_delivers_exactly_once(make_app, sink, peers: Peers) -> None:
    peers.pagerduty.fail_next(times=2, status=500)
    client = make_app("alert_forwarder", testing=False)
    assert post_event(client, alert_event(1), "binary").status_code == 500
    assert post_event(client, alert_event(1), "structured").status_code == 500
    assert post_event(client, alert_event(1), "binary").status_code == 200
    assert post_event(client, alert_event(1), "binary").status_code == 200
    assert peers.counts() == (1, 1, 1)
    assert peers.pagerduty.requests == 3
    peers.nothing_refused()


def test_smtp_temporary_failure_then_recovery_delivers_exactly_once(
    make_app, sink, peers: Peers
) -> None:
    peers.smtp.fail_next()
    client = make_app("alert_forwarder", testing=False)
    assert post_event(client, alert_event(1), "binary").status_code == 500
    assert post_event(client, alert_event(1), "binary").status_code == 200
    assert post_event(client, alert_event(2), "binary").status_code == 200
    created, updated = peers.smtp.mails
    assert updated.message["In-Reply-To"] == created.message_id
    assert peers.smtp.attempts == 3
    peers.nothing_refused()


def test_slack_rate_limit_is_a_failure_that_says_when_to_retry(sink, peers: Peers) -> None:
    peers.slack.rate_limit_next(retry_after=7)
    with pytest.raises(DeliveryError, match="Retry-After 7s"):
        alerting.forward(runtime.context(), alert_event(1))
    assert alerting.forward(runtime.context(), alert_event(1)) == ["soc_slack"]


def test_an_update_delivered_first_starts_the_thread(make_app, sink, peers: Peers) -> None:
    client = make_app("alert_forwarder")
    assert post_event(client, alert_event(2), "binary").status_code == 200
    assert post_event(client, alert_event(1), "binary").status_code == 200
    (root,) = peers.slack.top_level()
    assert root.metadata and root.metadata["event_payload"]["version"] == 2
    assert [r.metadata["event_payload"]["version"] for r in peers.slack.replies(root.ts)] == [1]
    first_mail, second_mail = peers.smtp.mails
    assert second_mail.message["In-Reply-To"] == first_mail.message_id
    peers.nothing_refused()


def test_a_deleted_thread_root_starts_a_new_thread(make_app, sink, peers: Peers) -> None:
    client = make_app("alert_forwarder", testing=False)
    assert post_event(client, alert_event(1), "binary").status_code == 200
    (root,) = peers.slack.top_level()
    peers.slack.delete(root.ts)
    assert post_event(client, alert_event(2), "binary").status_code == 500  # thread_not_found
    assert post_event(client, alert_event(2), "binary").status_code == 200
    (new_root,) = peers.slack.top_level()
    assert new_root.ts != root.ts and new_root.blocks[0]["text"]["text"].startswith(":red_circle:")
    assert peers.counts() == (1, 2, 2)


def test_an_alert_goes_only_to_the_destinations_it_names(make_app, sink, peers: Peers) -> None:
    client = make_app("alert_forwarder")
    assert post_event(client, alert_event(1, destinations=["oncall"]), "binary").status_code == 200
    assert peers.counts() == (0, 1, 0)


def test_each_alert_has_its_own_thread(make_app, sink, peers: Peers) -> None:
    client = make_app("alert_forwarder")
    other = "20261120T020000-00000000000000000001"
    for event in (alert_event(1), alert_event(1, alert_id=other), alert_event(2, alert_id=other)):
        assert post_event(client, event, "binary").status_code == 200
    roots = peers.slack.top_level()
    assert len(roots) == 2
    assert [len(peers.slack.replies(r.ts)) for r in roots] == [0, 1]
    assert set(peers.pagerduty.incidents) == {ALERT_ID, other}


def test_a_missing_setting_names_the_variable_to_set(
    sink, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TARN_DESTINATIONS__SOC_SLACK__CHANNEL")
    monkeypatch.setenv("TARN_DESTINATIONS__ONCALL__ROUTING_KEY", "too-short")
    runtime.reset_context()
    with pytest.raises(DeliveryError) as err:
        alerting.forward(runtime.context(), alert_event(1))
    assert "TARN_DESTINATIONS__SOC_SLACK__CHANNEL" in str(err.value)
    assert "32 characters" in str(err.value)
    assert peers.counts() == (0, 0, 1)  # the mail still went out


def test_an_unknown_type_lists_the_known_ones(sink, peers: Peers, monkeypatch) -> None:
    monkeypatch.setenv("TARN_DESTINATIONS__PIGEON__TYPE", "carrier-pigeon")
    runtime.reset_context()
    with pytest.raises(DeliveryError, match="known: webhook, slack, pagerduty, email"):
        alerting.forward(runtime.context(), alert_event(1))


def test_smtp_auth(make_app, sink, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
    peers.smtp.stop()
    smtp = SmtpPeer(username="tarn", password="s3cret")
    _, port = smtp.start()
    try:
        monkeypatch.setenv("TARN_DESTINATIONS__MAIL__PORT", str(port))
        monkeypatch.setenv("TARN_DESTINATIONS__MAIL__USERNAME", "tarn")
        monkeypatch.setenv("TARN_DESTINATIONS__MAIL__PASSWORD", "wrong")
        monkeypatch.setenv("TARN_ALERTING__DEFAULT_DESTINATIONS", '["mail"]')
        runtime.reset_context()
        client = make_app("alert_forwarder", testing=False)
        assert post_event(client, alert_event(1), "binary").status_code == 500
        assert smtp.rejected and all(r.startswith("AUTH") for r in smtp.rejected)
        assert smtp.mails == []
        monkeypatch.delenv("TARN_DESTINATIONS__MAIL__USERNAME")  # no AUTH at all: refused too
        runtime.reset_context()
        client = make_app("alert_forwarder", testing=False)
        assert post_event(client, alert_event(1), "binary").status_code == 500
        assert smtp.rejected[-1] == "mail without AUTH"
        monkeypatch.setenv("TARN_DESTINATIONS__MAIL__USERNAME", "tarn")
        monkeypatch.setenv("TARN_DESTINATIONS__MAIL__PASSWORD", "s3cret")
        runtime.reset_context()
        client = make_app("alert_forwarder", testing=False)
        assert post_event(client, alert_event(1), "binary").status_code == 200
        assert len(smtp.mails) == 1
    finally:
        smtp.stop()


def test_a_first_message_in_flight_holds_back_other_versions(sink, peers: Peers) -> None:
    ctx = runtime.context()
    assert _threads.begin(ctx, "soc_slack", ALERT_ID, "ev-1") is None  # ev-1 starts the thread
    assert _threads.begin(ctx, "soc_slack", ALERT_ID, "ev-1") is None  # its own retry may go on
    with pytest.raises(ThreadBusyError, match="being sent by another delivery"):
        _threads.begin(ctx, "soc_slack", ALERT_ID, "ev-2")
    _threads.commit(ctx, "soc_slack", ALERT_ID, "ev-1", {"channel": "C1", "ts": "1.000001"})
    assert _threads.begin(ctx, "soc_slack", ALERT_ID, "ev-2") == {"channel": "C1", "ts": "1.000001"}
    # A failed first send gives the claim up at once.
    assert _threads.begin(ctx, "mail", ALERT_ID, "ev-1") is None
    _threads.release(ctx, "mail", ALERT_ID, "ev-1")
    assert _threads.begin(ctx, "mail", ALERT_ID, "ev-2") is None


def test_a_stale_claim_is_taken_over(sink, peers: Peers, monkeypatch) -> None:
    ctx = runtime.context()
    assert _threads.begin(ctx, "mail", ALERT_ID, "ev-1") is None
    monkeypatch.setattr(_threads, "_stale_after", lambda ctx: 0.0)  # its sender died long ago
    assert _threads.begin(ctx, "mail", ALERT_ID, "ev-2") is None
