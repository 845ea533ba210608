"""Email over SMTP: one message per alert update, threaded per alert.

The Message-ID is derived from the event id, so a repeated send carries the same id and a
receiver can drop it; updates name the alert's first message in In-Reply-To and References,
which mail clients use to show one conversation per alert.
"""

from __future__ import annotations

import html
import json
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

from tarn.config import DestinationConfig
from tarn.destinations import _threads
from tarn.destinations._common import clip, one_line, require, severity_of, technique
from tarn.destinations.exceptions import DeliveryError

if TYPE_CHECKING:
    from tarn.runtime import Context

log = logging.getLogger("tarn.destinations")

SUBJECT_TITLE_LIMIT = 200
RECORD_REFS_SHOWN = 20


def message_id(event_id: str, sender: str) -> str:
    """The Message-ID of the mail for one alert event: the same event always gets the same id."""
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    if not at or not domain:
        domain = "tarn.invalid"  # RFC 2606: a name that is sure to be nobody's
    return f"<tarn.{event_id}@{domain}>"


def subject(alert: dict[str, Any]) -> str:
    title = clip(
        one_line(alert.get("title") or alert.get("name") or alert["detection"]), SUBJECT_TITLE_LIMIT
    )
    return f"[tarn] [{severity_of(alert).upper()}] {title} ({alert.get('action', 'created')})"


def _facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    name = alert.get("name")
    tags = []
    for tag in alert.get("tags") or []:
        known = technique(tag)
        tags.append(f"{tag} ({known[1]})" if known else tag)
    return [
        ("Detection", f"{alert['detection']}{f' ({name})' if name else ''}"),
        ("Severity", severity_of(alert)),
        ("Entity", str(alert.get("dedupe") or "-")),
        ("Matches", f"{alert.get('match_count', 0)} (threshold {alert.get('threshold', 1)})"),
        ("First matched", str(alert.get("first_matched", ""))),
        ("Last matched", str(alert.get("last_matched", ""))),
        ("Tags", ", ".join(tags) or "-"),
        ("Alert id", str(alert["alert_id"])),
        ("Version", f"{alert.get('version', '?')} ({alert.get('action', 'created')})"),
    ]


def text_body(alert: dict[str, Any]) -> str:
    title = one_line(alert.get("title") or alert.get("name") or alert["detection"])
    lines = [f"{severity_of(alert).upper()} alert: {title}", ""]
    facts = _facts(alert)
    width = max(len(k) for k, _ in facts) + 2
    lines += [f"{k + ':':<{width}}{v}" for k, v in facts]
    if alert.get("runbook"):
        lines += ["", "Runbook:", str(alert["runbook"]).strip()]
    if alert.get("context"):
        lines += [
            "",
            "Context:",
            json.dumps(alert["context"], indent=2, sort_keys=True, default=str),
        ]
    refs = alert.get("record_refs") or []
    if refs:
        lines += ["", f"Records (first {min(len(refs), RECORD_REFS_SHOWN)} of {len(refs)}):"]
        lines += [f"- {r}" for r in refs[:RECORD_REFS_SHOWN]]
    return "\n".join(lines) + "\n"


def html_body(alert: dict[str, Any]) -> str:
    e = html.escape
    title = one_line(alert.get("title") or alert.get("name") or alert["detection"])
    rows = "".join(
        f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _facts(alert)
    )
    parts = [
        f"<h2>{e(severity_of(alert).upper())} alert: {e(title)}</h2>",
        f"<table>{rows}</table>",
    ]
    if alert.get("runbook"):
        parts.append(f"<h3>Runbook</h3><p>{e(str(alert['runbook']).strip())}</p>")
    if alert.get("context"):
        dumped = json.dumps(alert["context"], indent=2, sort_keys=True, default=str)
        parts.append(f"<h3>Context</h3><pre>{e(dumped)}</pre>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def email_message(
    alert: dict[str, Any],
    event_id: str,
    *,
    sender: str,
    recipients: list[str],
    thread_root: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The mail for one alert update; `thread_root` is the Message-ID of the alert's first mail."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject(alert)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id(event_id, sender)
    if thread_root and thread_root != msg["Message-ID"]:
        msg["In-Reply-To"] = thread_root
        msg["References"] = thread_root
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
    msg["X-Tarn-Alert-Id"] = one_line(str(alert["alert_id"]))
    msg["X-Tarn-Event-Id"] = event_id
    msg["X-Tarn-Severity"] = severity_of(alert)
    msg.set_content(text_body(alert))
    msg.add_alternative(html_body(alert), subtype="html")
    return msg


def _smtp_send(name: str, dest: DestinationConfig, msg: EmailMessage, timeout: float) -> None:
    assert dest.host is not None and dest.from_ is not None
    port = dest.port or (465 if dest.tls else 587 if dest.starttls else 25)
    where = f"destination {name!r}: SMTP server {dest.host}:{port}"
    context = ssl.create_default_context()
    try:
        smtp = (
            smtplib.SMTP_SSL(dest.host, port, timeout=timeout, context=context)
            if dest.tls
            else smtplib.SMTP(dest.host, port, timeout=timeout)
        )
        with smtp:
            if dest.starttls:
                smtp.starttls(context=context)
            if dest.username:
                smtp.login(dest.username, dest.password or "")
            refused = smtp.send_message(msg, from_addr=parseaddr(dest.from_)[1], to_addrs=dest.to)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where} refused every recipient: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        reply = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        raise DeliveryError(f"{where} answered {exc.smtp_code} {reply}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
    if refused:
        # The others have it; sending again would repeat it to them, so report and go on.
        log.warning("%s refused some recipients: %s", where, refused)


def send_email(
    ctx: Context, name: str, dest: DestinationConfig, alert: dict[str, Any], event_id: str
) -> None:
    """Mail the alert update; the first mail of an alert is the root the others reply to."""
    require(name, dest, "host", "from", "to")
    assert dest.from_ is not None
    alert_id = str(alert["alert_id"])
    root = _threads.begin(ctx, name, alert_id, event_id)
    msg = email_message(
        alert,
        event_id,
        sender=dest.from_,
        recipients=dest.to,
        thread_root=root["message_id"] if root else None,
    )
    try:
        _smtp_send(name, dest, msg, ctx.cfg.alerting.delivery_timeout_seconds)
    except BaseException:
        if root is None:
            _threads.release(ctx, name, alert_id, event_id)
        raise
    if root is None:
        _threads.commit(ctx, name, alert_id, event_id, {"message_id": msg["Message-ID"]})
