"""A local SMTP server (aiosmtpd) that checks each mail as a careful receiving server would.

A mail must have From (the envelope sender's address), To (naming every envelope recipient),
Subject, Date (RFC 5322) and Message-ID (`<left@right>`); no line may pass 998 octets; a text
part must be there. A reply (In-Reply-To) must name a Message-ID this server has received and
be in its References. A repeated Message-ID is kept aside as a duplicate. It can require
AUTH (PLAIN/LOGIN) and be told to answer the next mails with a temporary failure.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tarn._proc import free_port

LINE_MAX = 998
_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")


@dataclass
class Mail:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[attr-defined]


def check_mail(
    raw: bytes, envelope_from: str, recipients: list[str], known_ids: set[str]
) -> tuple[EmailMessage | None, list[str]]:
    """The parsed mail and why it is not acceptable (an empty list when it is)."""
    problems = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if len(line.rstrip(b"\r")) > LINE_MAX:
            problems.append(f"line {n} is longer than {LINE_MAX} octets")
            break
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    for header in ("From", "To", "Subject", "Date", "Message-ID"):
        if len(msg.get_all(header) or []) != 1:
            problems.append(f"needs exactly one {header} header")
    if problems:
        return msg, problems
    sender = parseaddr(str(msg["From"]))[1]
    if "@" not in sender:
        problems.append(f"From {msg['From']!r} is not an address")
    elif sender.lower() != envelope_from.lower():
        problems.append(f"From {sender} is not the envelope sender {envelope_from}")
    named = {
        a.lower()
        for _, a in getaddresses([str(v) for v in msg.get_all("To", []) + msg.get_all("Cc", [])])
    }
    for rcpt in recipients:
        if rcpt.lower() not in named:
            problems.append(f"recipient {rcpt} is not named in To or Cc")
    if not str(msg["Subject"]).strip():
        problems.append("Subject is empty")
    try:
        date = parsedate_to_datetime(str(msg["Date"]))
        if date.tzinfo is None:
            problems.append("Date has no time zone")
    except (TypeError, ValueError):
        problems.append(f"Date {msg['Date']!r} is not an RFC 5322 date")
    if not _MESSAGE_ID.fullmatch(str(msg["Message-ID"]).strip()):
        problems.append(f"Message-ID {msg['Message-ID']!r} is not <left@right>")
    parent = msg.get("In-Reply-To")
    if parent is not None:
        parent = str(parent).strip()
        if parent not in known_ids:
            problems.append(f"In-Reply-To {parent} names no mail received here")
        if parent not in str(msg.get("References", "")).split():
            problems.append("References does not contain In-Reply-To")
    if msg.get_body(preferencelist=("plain",)) is None:
        problems.append("no text/plain part")
    return msg, problems


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.peer.username is not None and not session.authenticated:
            self.peer._note("mail without AUTH")
            return "530 5.7.0 Authentication required"
        return self.peer._receive(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)


class SmtpPeer:
    """`SmtpPeer().start()` returns (host, port) for a destination's `host` and `port`."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self.username = username
        self.password = password
        self.mails: list[Mail] = []
        self.duplicates: list[Mail] = []
        self.rejected: list[str] = []
        self.attempts = 0
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def fail_next(
        self, times: int = 1, reply: str = "451 4.3.0 Temporary failure, try again later"
    ) -> None:
        with self._lock:
            self._faults.extend([reply] * times)

    def by_id(self, message_id: str) -> Mail | None:
        with self._lock:
            return next((m for m in self.mails if m.message_id == message_id), None)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        if not ok:
            self._note(f"AUTH {mechanism} failed")
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    def _note(self, problem: str) -> None:
        with self._lock:
            self.rejected.append(problem)

    def _receive(self, envelope_from: str, recipients: list[str], raw: bytes) -> str:
        with self._lock:
            self.attempts += 1
            if self._faults:
                return self._faults.popleft()
            known = {m.message_id for m in self.mails}
        msg, problems = check_mail(raw, envelope_from, recipients, known)
        with self._lock:
            if problems or msg is None:
                self.rejected.append("; ".join(problems))
                return f"550 5.6.0 {problems[0]}"
            mail = Mail(envelope_from, recipients, msg, raw)
            if mail.message_id in known:
                self.duplicates.append(mail)
            else:
                self.mails.append(mail)
        return "250 2.0.0 OK"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        auth: dict[str, Any] = {}
        if self.username is not None:
            # AUTH without TLS is fine on the loopback (a real server would want TLS first);
            # handle_DATA refuses mail from a session that did not authenticate.
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(
            _Handler(self), hostname=host, port=port or free_port(host), **auth
        )
        self._controller.start()
        return host, self._controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
