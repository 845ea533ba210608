"""Payload builders of each destination, checked by the same rules the local peers apply."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest

from tarn import alerting, config
from tarn.destinations import (
    SENDERS,
    DestinationConfigError,
    email_message,
    message_id,
    pagerduty_event,
    sender_for,
    slack_message,
)
from tarn.destinations._slack import escape, fallback_text, tag_text
from tarn.exceptions import ConfigError
from tarn.peers.pagerduty import check_event
from tarn.peers.slack import check_blocks, check_message
from tarn.peers.smtp import check_mail

BASE: dict[str, Any] = {
    "alert_id": "20261120T010000-5f1c0a9e2b7d43a8c6e1",
    "detection": "aws_root_console_login",
    "name": "Root console login",
    "severity": "high",
    "title": "Root console login",
    "dedupe": "123456789012",
    "first_matched": "2026-11-20T01:00:00+00:00",
    "last_matched": "2026-11-20T01:05:00+00:00",
    "match_count": 3,
    "threshold": 1,
    "version": 2,
    "context": {"source_ip": "67.43.156.12"},
    "runbook": "https://runbooks.example.org/root",
    "record_refs": ["e1", "e2", "e3"],
    "destinations": [],
    "tags": ["attack.t1078.004", "attack.initial_access"],
    "action": "updated",
}
ROUTING_KEY = "k" * 32


def alert(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


ALERTS = {
    "typical": alert(),
    "created": alert(action="created", version=1),
    "critical": alert(severity="critical"),
    "info": alert(severity="info"),
    "long title": alert(title="x" * 5000),
    "markup in title": alert(title="<!channel> & <@U123> *bold*"),
    "newlines in title": alert(title="line one\r\nBcc: victim@example.org\nline three"),
    "huge context": alert(context={f"k{i}": "v" * 500 for i in range(200)}),
    "one enormous line": alert(context={"blob": "y" * 200_000}),
    "no context, runbook or tags": alert(context={}, runbook="", tags=[], record_refs=[]),
    "unicode": alert(title="Anmeldung für Stefan 👤 aus Zürich", dedupe="ßtefan"),
    "many tags": alert(tags=[f"attack.t{1000 + i}" for i in range(60)]),
    "runbook text, not a link": alert(runbook="Call the on-call lead.\nThen rotate keys."),
}


# -- Slack ---------------------------------------------------------------------------------
@pytest.mark.parametrize("in_thread", [False, True])
@pytest.mark.parametrize("case", ALERTS)
def test_slack_message_is_valid_block_kit(case: str, in_thread: bool) -> None:
    msg = slack_message(
        ALERTS[case],
        "ev-1",
        channel="C0123ABCD",
        thread_ts="1700000000.000100" if in_thread else None,
    )
    assert check_message(msg) is None
    assert msg["metadata"]["event_payload"]["event_id"] == "ev-1"
    assert ("thread_ts" in msg) is in_thread
    if not in_thread:
        header = msg["blocks"][0]
        assert header["type"] == "header" and len(header["text"]["text"]) <= 150


@pytest.mark.parametrize(
    ("severity", "emoji"),
    [("critical", ":rotating_light:"), ("high", ":red_circle:"), ("info", ":large_blue_circle:")],
)
def test_slack_header_shows_severity(severity: str, emoji: str) -> None:
    msg = slack_message(alert(severity=severity, action="created"), "e", channel="C0123ABCD")
    assert msg["blocks"][0]["text"]["text"] == f"{emoji} Root console login"
    assert fallback_text(alert(severity=severity)).startswith(f"[{severity.upper()}]")


def test_slack_escapes_control_characters_and_never_cuts_an_entity() -> None:
    assert escape("<!channel> & >") == "&lt;!channel&gt; &amp; &gt;"
    text = fallback_text(alert(title="&" * 2000))
    assert len(text) <= 3000 and text.endswith("&amp;…")
    # mrkdwn would turn <!channel> into a mention of everyone; plain_text shows it as typed.
    msg = slack_message(ALERTS["markup in title"], "e", channel="C1")
    texts = [b.get("text") for b in msg["blocks"]] + [
        f for b in msg["blocks"] for f in b.get("fields", [])
    ]
    mrkdwn = [msg["text"]] + [t["text"] for t in texts if t and t["type"] == "mrkdwn"]
    assert not any("<!channel>" in t or "<@U123>" in t for t in mrkdwn)
    assert msg["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": ":red_circle: Updated: <!channel> & <@U123> *bold*",
        "emoji": True,
    }


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        ("attack.t1078", "<https://attack.mitre.org/techniques/T1078/|T1078>"),
        ("attack.t1078.004", "<https://attack.mitre.org/techniques/T1078/004/|T1078.004>"),
        ("attack.initial_access", "`attack.initial_access`"),
        ("a<b", "`a&lt;b`"),
    ],
)
def test_slack_tags(tag: str, text: str) -> None:
    assert tag_text(tag) == text


def test_slack_shows_whole_tags_only() -> None:
    tags = [f"attack.t{1000 + i}.{i:03d}" for i in range(200)]
    (footer,) = [
        b
        for b in slack_message(alert(tags=tags), "e", channel="C1")["blocks"]
        if b["type"] == "context"
    ]
    text = footer["elements"][1]["text"]
    assert len(text) <= 2000 and text.endswith(" more")
    assert all(part.endswith(">") for part in text.split(" +")[0].split(" "))


def test_slack_reply_broadcast_only_in_a_thread() -> None:
    top = slack_message(BASE, "e", channel="C1", reply_broadcast=True)
    reply = slack_message(
        BASE, "e", channel="C1", thread_ts="1700000000.000100", reply_broadcast=True
    )
    assert "reply_broadcast" not in top and reply["reply_broadcast"] is True


TEXT = {"type": "mrkdwn", "text": "ok"}


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([], "1 to 50 blocks"),
        ([{"type": "divider"}] * 51, "1 to 50 blocks"),
        ([{"type": "header", "text": TEXT}], "text type must be one of ['plain_text']"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "less than 151"),
        ([{"type": "section"}], "must provide text or fields"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "less than 3001"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}], "non-empty string"),
        ([{"type": "section", "fields": [TEXT] * 11}], "1 to 10 text objects"),
        ([{"type": "section", "text": {"type": "markdown", "text": "x"}}], "text type"),
        ([{"type": "section", "text": TEXT, "color": "red"}], "invalid additional property"),
        ([{"type": "context", "elements": []}], "1 to 10 elements"),
        ([{"type": "context", "elements": [{"type": "image"}]}], "image_url and alt_text"),
        ([{"type": "divider", "text": TEXT}], "invalid additional property"),
        ([{"type": "table"}], "unsupported block type"),
        ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "unique"),
        (["divider"], "must be an object"),
    ],
)
def test_slack_peer_refuses_invalid_blocks(blocks: Any, problem: str) -> None:
    problems = check_blocks(blocks)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"channel": ""}, "channel_not_found"),
        ({"text": ""}, "no_text"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"thread_ts": "yesterday"}, "invalid_thread_ts"),
        ({"reply_broadcast": True}, "invalid_arguments"),
        ({"attachments": []}, "invalid_arguments"),
        (
            {"metadata": {"event_type": "Tarn Alert", "event_payload": {}}},
            "invalid_metadata_format",
        ),
        ({"blocks": [{"type": "header", "text": TEXT}]}, "invalid_blocks"),
    ],
)
def test_slack_peer_refuses_invalid_messages(change: dict[str, Any], error: str) -> None:
    msg = {**slack_message(BASE, "e", channel="C0123ABCD"), **change}
    refused = check_message(msg)
    assert refused is not None and refused[0] == error


# -- PagerDuty -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ALERTS)
def test_pagerduty_event_is_valid(case: str) -> None:
    event = pagerduty_event(ALERTS[case], ROUTING_KEY, event_id="ev-1")
    assert check_event(event) == []
    assert event["dedup_key"] == ALERTS[case]["alert_id"]
    assert event["event_action"] == "trigger" and event["client"] == "tarn"
    assert len(json.dumps(event).encode()) < 512 * 1024


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", "critical"),
        ("high", "error"),
        ("medium", "warning"),
        ("low", "info"),
        ("info", "info"),
    ],
)
def test_pagerduty_severity_mapping(severity: str, expected: str) -> None:
    assert pagerduty_event(alert(severity=severity), ROUTING_KEY)["payload"]["severity"] == expected


def test_pagerduty_payload_fields() -> None:
    event = pagerduty_event(BASE, ROUTING_KEY, source="tarn-prod", event_id="ev-9")
    payload = event["payload"]
    assert payload["summary"] == "[tarn] [HIGH] Root console login"
    assert payload["source"] == "tarn-prod" and payload["timestamp"] == BASE["last_matched"]
    assert payload["class"] == "aws_root_console_login" and payload["component"] == "123456789012"
    assert payload["custom_details"]["event_id"] == "ev-9"
    assert payload["custom_details"]["match_count"] == 3
    assert event["links"][0] == {"href": BASE["runbook"], "text": "Runbook"}
    assert event["links"][1]["href"] == "https://attack.mitre.org/techniques/T1078/004/"
    assert len(pagerduty_event(ALERTS["long title"], ROUTING_KEY)["payload"]["summary"]) == 1024
    assert "links" not in pagerduty_event(ALERTS["no context, runbook or tags"], ROUTING_KEY)
    huge = alert(context={"blob": "y" * 400_000})
    big = pagerduty_event(huge, ROUTING_KEY)["payload"]["custom_details"]
    assert big["context"]["truncated"] is True


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"routing_key": "short"}, "should be 32 characters"),
        ({"event_action": "page"}, "'event_action' is invalid"),
        ({"dedup_key": "d" * 256}, "'dedup_key'"),
        ({"payload": None}, "'payload' is missing"),
        ({"payload": {"summary": "s", "source": "t", "severity": "high"}}, "'payload.severity'"),
        ({"payload": {"summary": "s" * 1025, "source": "t", "severity": "info"}}, "1024"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source'"),
        (
            {"payload": {"summary": "s", "source": "t", "severity": "info", "timestamp": "now"}},
            "ISO 8601",
        ),
        ({"event_action": "resolve", "dedup_key": None}, "required to resolve"),
        ({"links": [{"text": "no href"}]}, "needs an href"),
        ({"color": "red"}, "unknown fields"),
    ],
)
def test_pagerduty_peer_refuses_invalid_events(change: dict[str, Any], problem: str) -> None:
    event = {**pagerduty_event(BASE, ROUTING_KEY), **change}
    if event.get("dedup_key") is None:
        event.pop("dedup_key")
    errors = check_event(event)
    assert any(problem in e for e in errors), errors


# -- email ---------------------------------------------------------------------------------
SENDER = "tarn alerts <alerts@example.org>"
TO = ["soc@example.org", "cso@example.org"]


def raw_mail(a: dict[str, Any], event_id: str = "ev-1", root: str | None = None) -> bytes:
    return email_message(a, event_id, sender=SENDER, recipients=TO, thread_root=root).as_bytes(
        policy=policy.SMTP
    )


@pytest.mark.parametrize("case", ALERTS)
def test_email_is_acceptable_to_a_careful_server(case: str) -> None:
    root = "<tarn.ev-0@example.org>"
    msg, problems = check_mail(raw_mail(ALERTS[case], root=root), "alerts@example.org", TO, {root})
    assert problems == []
    assert msg is not None and msg["Message-ID"] == "<tarn.ev-1@example.org>"
    assert msg["In-Reply-To"] == root and msg["References"] == root
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "\n" not in str(msg["Subject"]) and "Bcc" not in msg
    assert msg.get_body(preferencelist=("html",)) is not None


@pytest.mark.parametrize(
    ("a", "subject"),
    [
        (alert(action="created"), "[tarn] [HIGH] Root console login (created)"),
        (alert(severity="critical"), "[tarn] [CRITICAL] Root console login (updated)"),
        (
            ALERTS["newlines in title"],
            "[tarn] [HIGH] line one Bcc: victim@example.org line three (updated)",
        ),
    ],
)
def test_email_subject(a: dict[str, Any], subject: str) -> None:
    assert email_message(a, "e", sender=SENDER, recipients=TO)["Subject"] == subject


def test_email_message_id_follows_the_event_and_the_sender_domain() -> None:
    assert message_id("abc", SENDER) == message_id("abc", "alerts@example.org")
    assert message_id("abc", SENDER) == "<tarn.abc@example.org>"
    assert message_id("abc", "no-domain") == "<tarn.abc@tarn.invalid>"
    first = email_message(BASE, "abc", sender=SENDER, recipients=TO)
    assert "In-Reply-To" not in first and "References" not in first
    # The root itself is never a reply to itself.
    again = email_message(
        BASE, "abc", sender=SENDER, recipients=TO, thread_root=first["Message-ID"]
    )
    assert "In-Reply-To" not in again


def test_email_text_body_lists_the_facts() -> None:
    msg = BytesParser(policy=policy.default).parsebytes(raw_mail(BASE))
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "HIGH alert: Root console login" in text
    assert "Matches:       3 (threshold 1)" in text
    assert "attack.t1078.004 (https://attack.mitre.org/techniques/T1078/004/)" in text
    assert '"source_ip": "67.43.156.12"' in text and "- e3" in text


def test_email_html_body_escapes_markup() -> None:
    msg = email_message(ALERTS["markup in title"], "e", sender=SENDER, recipients=TO)
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in html and "<!channel>" not in html


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda m: m.replace_header("Message-ID", "no-angle-brackets"), "is not <left@right>"),
        (lambda m: m.__delitem__("Date"), "exactly one Date"),
        (lambda m: m.replace_header("Date", "yesterday"), "not an RFC 5322 date"),
        (lambda m: m.replace_header("From", "someone@else.example"), "not the envelope sender"),
        (lambda m: m.replace_header("To", "soc@example.org"), "cso@example.org is not named"),
        (lambda m: m.__setitem__("In-Reply-To", "<unknown@example.org>"), "names no mail"),
    ],
)
def test_smtp_peer_refuses_bad_mail(mutate: Any, problem: str) -> None:
    msg = email_message(BASE, "ev-1", sender=SENDER, recipients=TO)
    mutate(msg)
    _, problems = check_mail(msg.as_bytes(policy=policy.SMTP), "alerts@example.org", TO, set())
    assert any(problem in p for p in problems), problems


def test_smtp_peer_refuses_overlong_lines() -> None:
    raw = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n" + b"x" * 1000 + b"\r\n"
    _, problems = check_mail(raw, "a@example.org", ["b@example.org"], set())
    assert any("longer than 998" in p for p in problems)


# -- configuration and registry ------------------------------------------------------------
def test_email_settings_from_the_environment() -> None:
    cfg = config.load(
        {
            "TARN_DESTINATIONS__MAIL__TYPE": "email",
            "TARN_DESTINATIONS__MAIL__HOST": "smtp.example.org",
            "TARN_DESTINATIONS__MAIL__PORT": "2525",
            "TARN_DESTINATIONS__MAIL__FROM": SENDER,
            "TARN_DESTINATIONS__MAIL__TO": "soc@example.org, cso@example.org,",
            "TARN_DESTINATIONS__MAIL__STARTTLS": "true",
        }
    )
    mail = cfg.destinations["mail"]
    assert (mail.host, mail.port, mail.from_, mail.to, mail.starttls, mail.tls) == (
        "smtp.example.org",
        2525,
        SENDER,
        ["soc@example.org", "cso@example.org"],
        True,
        False,
    )


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"STARTTLS": "true", "TLS": "true"}, "not both"),
        ({"PORT": "smtp"}, "destinations.mail.port"),
        ({"REPLY_BROADCAST": "maybe"}, "destinations.mail.reply_broadcast"),
    ],
)
def test_destination_settings_are_checked_on_load(env: dict[str, str], problem: str) -> None:
    environ = {"TARN_DESTINATIONS__MAIL__TYPE": "email"}
    environ |= {f"TARN_DESTINATIONS__MAIL__{k}": v for k, v in env.items()}
    with pytest.raises(ConfigError, match=problem):
        config.load(environ)


def test_registry() -> None:
    assert list(SENDERS) == ["webhook", "slack", "pagerduty", "email"]
    assert alerting.SENDERS is SENDERS
    dest = config.DestinationConfig(type="fax")
    with pytest.raises(DestinationConfigError, match="known: webhook, slack, pagerduty, email"):
        sender_for("x", dest)
