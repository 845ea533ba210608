"""Linux auth log lines (sshd, sudo, PAM) from syslog -> ECS.

Records come from the syslog parser: {"facility", "severity", "timestamp", "hostname",
"appname", "procid", "msgid", "structured_data", "message", "format"}.

Every line is kept. sshd (also `sshd-session`/`sshd-auth` of OpenSSH 9.8+), sudo and PAM
messages get specific actions; any other line lands with `event.action: other` and its text in
`message`, so nothing is lost silently.

Time: RFC 5424 timestamps are full ISO 8601 and used as they are. RFC 3164 timestamps
(`Nov 20 04:31:02`) carry no year and usually no zone: without a zone they are read as UTC;
the year is the current one unless that puts the time more than a day in the future (then
the previous year; the day of slack absorbs clock skew between the logging host and us).
Feb 29 falls back to the latest leap year. "Now" is the framework's clock
(`tarn.logsources.helpers.now`, pinned by the golden runner) when it is there.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from tarn.logsources.helpers import digits_int_or_none, strict_ip_or_none

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_FUTURE_SLACK = timedelta(days=1)

try:  # the framework's clock, which the golden runner pins so goldens do not age
    from tarn.logsources.helpers import now as _now
except ImportError:  # pragma: no cover - framework without the helper

    def _now() -> datetime:
        return datetime.now(UTC)


def _zone(token: str) -> timezone | None:
    if token in ("Z", "UTC", "GMT"):
        return UTC
    if token[:1] in "+-" and token[1:].replace(":", "").isdigit():
        digits = token[1:].replace(":", "")
        if len(digits) == 4 and int(digits[:2]) < 24 and int(digits[2:]) < 60:
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return timezone(-offset if token[0] == "-" else offset)
    return None


def _ts_3164(text: str, now: datetime | None = None) -> datetime:
    """`Mmm dd [yyyy] hh:mm:ss[.fff] [zone]` -> aware UTC datetime."""
    parts = text.split()
    tz = _zone(parts[-1]) if len(parts) > 3 else None
    if tz is not None:
        parts.pop()
    tz = tz or UTC
    year = None
    if len(parts) == 4 and len(parts[2]) == 4 and parts[2].isdigit():
        year = int(parts.pop(2))
    if len(parts) != 3:
        raise ValueError(f"unreadable syslog timestamp {text!r}")
    month = _MONTHS.get(parts[0][:3].lower())
    clock = parts[2].split(":")
    if month is None or not parts[1].isdigit() or len(clock) != 3:
        raise ValueError(f"unreadable syslog timestamp {text!r}")
    day = int(parts[1])
    seconds, _, fraction = clock[2].partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    hms = (int(clock[0]), int(clock[1]), int(seconds))
    if year is not None:
        return datetime(year, month, day, *hms, micro, tzinfo=tz).astimezone(UTC)
    now = now or _now()
    year = now.year
    for _ in range(9):  # Feb 29 needs a leap year: step back until one fits
        try:
            candidate = datetime(year, month, day, *hms, micro, tzinfo=tz).astimezone(UTC)
        except ValueError:
            year -= 1
            continue
        if candidate > now + _FUTURE_SLACK:
            year -= 1
            continue
        return candidate
    raise ValueError(f"syslog timestamp {text!r} is not a valid date")


def _ts(record: dict[str, Any]) -> datetime:
    text = record.get("timestamp")
    if not isinstance(text, str) or not text.strip() or text.strip() == "-":
        raise ValueError("syslog line has no timestamp")
    text = text.strip()
    if text[:4].isdigit():  # RFC 5424 / RFC 3339, also rsyslog's high-precision RFC 3164 form
        ts = datetime.fromisoformat(text)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return _ts_3164(text)


_ip = lru_cache(maxsize=4096)(strict_ip_or_none)


# --- sshd ---------------------------------------------------------------------------------

_ADDR = r"(?P<ip>\S+) port (?P<port>\d+)"
_KEY = r"(?:: (?P<key_type>\S+) (?P<fingerprint>\S+))?"
_ACCEPTED = re.compile(rf"Accepted (?P<method>\S+) for (?P<user>\S+) from {_ADDR}(?: ssh2)?{_KEY}")
_FAILED = re.compile(
    rf"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from {_ADDR}(?: ssh2)?{_KEY}"
)
_INVALID = re.compile(r"Invalid user (?P<user>.*?) from (?P<ip>\S+)(?: port (?P<port>\d+))?")
_WHO = r"(?:(?P<who>invalid user|authenticating user|user) (?P<user>\S*) )?"
_DISCONNECTED = re.compile(rf"Disconnected from {_WHO}{_ADDR}")
_CLOSED = re.compile(rf"Connection (?P<how>closed|reset) by {_WHO}{_ADDR}")
_DISCONNECTING = re.compile(rf"Disconnecting {_WHO}{_ADDR}: (?P<reason>.*?)(?: \[preauth\])?$")
_RECEIVED = re.compile(
    rf"Received disconnect from {_ADDR}:(?P<code>\d+): (?P<reason>.*?)(?: \[preauth\])?$"
)
_MAX_ATTEMPTS = re.compile(
    rf"(?:error: )?maximum authentication attempts exceeded for (?P<invalid>invalid user )?(?P<user>.*?) from {_ADDR}"
)
_REPEATED = re.compile(r"message repeated (?P<n>\d+) times: \[ ?(?P<inner>.*?) ?\]$")

# --- PAM ----------------------------------------------------------------------------------

_PAM_SESSION = re.compile(
    r"(?P<module>pam_\w+)\((?P<service>[^:)]+):session\): session (?P<state>opened|closed) "
    r"for user (?P<user>[^\s(]+)(?:\(uid=(?P<uid>\d+)\))?(?: by (?P<by>[^\s(]*)\(uid=(?P<by_uid>\d+)\))?"
)
_PAM_AUTH_FAILURE = re.compile(
    r"(?P<module>pam_\w+)\((?P<service>[^:)]+):auth\): authentication failure;(?P<kv>.*)$"
)
_PAM_UNKNOWN = re.compile(
    r"(?P<module>pam_\w+)\((?P<service>[^:)]+):auth\): check pass; user unknown"
)
_PAM_MORE = re.compile(r"PAM (?P<n>\d+) more authentication failures?;(?P<kv>.*)$")
_KV = re.compile(r"(\w+)=(\S*)")


def _kv(text: str) -> dict[str, str]:
    return {k: v for k, v in _KV.findall(text) if v}


# --- output -------------------------------------------------------------------------------


def _base(record: dict[str, Any], message: str) -> dict[str, Any]:
    facility = digits_int_or_none(record.get("facility"))
    severity = digits_int_or_none(record.get("severity"))
    host = record.get("hostname") or None
    app = record.get("appname") or None
    sd = record.get("structured_data")
    return {
        "ts": _ts(record),
        "message": message,
        "event": {"kind": "event", "action": "other", "type": ["info"]},
        "host": {"hostname": host},
        "process": {"name": app, "pid": digits_int_or_none(record.get("procid"))},
        "log": {
            "syslog": {
                "facility": {"code": facility},
                "severity": {"code": severity},
                "priority": facility * 8 + severity
                if facility is not None and severity is not None
                else None,
                "msgid": record.get("msgid") or None,
            }
        },
        "source": {},
        "user": {},
        "linux_auth": {
            "structured_data": json.dumps(sd, separators=(",", ":"), sort_keys=True) if sd else None
        },
        "related": {"ip": [], "user": [], "hosts": [host] if host else [], "hash": []},
    }


def _set_source(out: dict[str, Any], address: str | None, port: str | None) -> None:
    if not address:
        return
    ip = _ip(address)
    out["source"] = {
        "ip": ip,
        "port": int(port) if port else None,
        "address": address,
        "domain": None if ip else address,  # sshd logs a name when UseDNS is on
    }
    if ip:
        out["related"]["ip"].append(ip)
    else:
        out["related"]["hosts"].append(address)


def _set_user(out: dict[str, Any], name: str | None) -> None:
    if name:
        out["user"]["name"] = name
        out["related"]["user"].append(name)


def _event(
    out: dict[str, Any], action: str, category: list[str], types: list[str], outcome: str | None
) -> None:
    out["event"].update(action=action, category=category, type=types, outcome=outcome)


def _sshd(out: dict[str, Any], message: str) -> bool:
    ssh: dict[str, Any] = {"preauth": message.endswith("[preauth]") or None}
    out["linux_auth"]["ssh"] = ssh
    out["network"] = {"protocol": "ssh"}
    if m := _ACCEPTED.match(message):
        _event(out, "ssh_login", ["authentication", "session"], ["start"], "success")
    elif m := _FAILED.match(message):
        _event(out, "ssh_login", ["authentication"], ["start"], "failure")
        ssh["invalid_user"] = bool(m["invalid"])
    elif m := _INVALID.match(message):
        _event(out, "ssh_invalid_user", ["authentication"], ["info"], "failure")
        ssh["invalid_user"] = True
    elif m := _MAX_ATTEMPTS.match(message):
        _event(out, "ssh_max_auth_attempts", ["authentication"], ["info"], "failure")
        ssh["invalid_user"] = bool(m["invalid"])
    elif (m := _DISCONNECTED.match(message)) or (m := _CLOSED.match(message)):
        _event(out, "ssh_disconnect", ["session"], ["end"], None)
        if m["who"]:
            ssh["invalid_user"] = m["who"] == "invalid user"
    elif m := _RECEIVED.match(message):
        _event(out, "ssh_disconnect", ["session"], ["end"], None)
        ssh["disconnect_code"] = int(m["code"])
        out["event"]["reason"] = m["reason"]
    elif m := _DISCONNECTING.match(message):  # sshd ends the connection itself
        _event(out, "ssh_disconnect", ["session"], ["end"], "failure")
        out["event"]["reason"] = m["reason"]
        if m["who"]:
            ssh["invalid_user"] = m["who"] == "invalid user"
    else:
        return False
    groups = m.groupdict()
    _set_source(out, groups["ip"], groups.get("port"))
    _set_user(out, groups.get("user"))
    if groups.get("method"):
        ssh["method"] = groups["method"]
    if groups.get("fingerprint"):
        ssh["key_type"] = groups["key_type"]
        ssh["key_fingerprint"] = groups["fingerprint"]
        out["related"]["hash"].append(groups["fingerprint"])
    return True


def _pam(out: dict[str, Any], message: str) -> bool:
    if m := _PAM_SESSION.match(message):
        opened = m["state"] == "opened"
        _event(
            out,
            f"session_{m['state']}",
            ["session"],
            ["start" if opened else "end"],
            "success" if opened else None,
        )
        _set_user(out, m["user"])
        out["user"]["id"] = m["uid"]
        pam = {"module": m["module"], "service": m["service"], "by_user": m["by"] or None}
        if m["by"]:
            out["related"]["user"].append(m["by"])
    elif m := _PAM_UNKNOWN.match(message):
        _event(out, "pam_authentication_failure", ["authentication"], ["info"], "failure")
        out["event"]["reason"] = "user unknown"
        pam = {"module": m["module"], "service": m["service"]}
    elif (m := _PAM_AUTH_FAILURE.match(message)) or (m := _PAM_MORE.match(message)):
        kv = _kv(m["kv"])
        _event(out, "pam_authentication_failure", ["authentication"], ["info"], "failure")
        _set_user(out, kv.get("user"))
        _set_source(out, kv.get("rhost"), None)
        pam = {
            "module": m.groupdict().get("module"),
            "service": m.groupdict().get("service"),
            "tty": kv.get("tty"),
            "ruser": kv.get("ruser"),
            "logname": kv.get("logname"),
        }
        if m.groupdict().get("n"):
            out["linux_auth"]["repeated"] = int(m["n"])
    else:
        return False
    out["linux_auth"]["pam"] = pam
    return True


def _sudo(out: dict[str, Any], message: str) -> bool:
    user, sep, rest = message.strip().partition(" : ")
    if not sep or " " in user:
        return False
    head, has_command, command = rest.partition("COMMAND=")
    fields: dict[str, str] = {}
    problems = []
    for part in head.split(" ; "):
        part = part.strip().rstrip(";").strip()
        key, eq, value = part.partition("=")
        if eq and key.isupper():
            fields[key] = value
        elif part:
            problems.append(part)
    command = command.strip()
    problem = "; ".join(problems) or None
    if problem is None:
        _event(out, "sudo_command", ["process"], ["start"], "success")
    elif "incorrect password" in problem or "authentication" in problem:
        _event(out, "sudo_auth_failure", ["authentication"], ["info"], "failure")
    elif "NOT in sudoers" in problem or "not allowed" in problem:
        _event(out, "sudo_denied", ["process", "iam"], ["denied"], "failure")
    else:
        _event(out, "sudo_error", ["process"], ["info"], "failure")
    out["event"]["reason"] = problem
    _set_user(out, user)
    run_as = fields.get("USER")
    if run_as:
        out["user"]["effective"] = {"name": run_as}
        out["related"]["user"].append(run_as)
    sudo = {
        "tty": fields.get("TTY"),
        "group": fields.get("GROUP"),
        "error": problem,
    }
    if has_command and command:
        args = command.split()
        # A process of its own: the command sudo ran, not sudo itself.
        out["process"] = {
            "name": args[0].rsplit("/", 1)[-1],
            "executable": args[0],
            "command_line": command,
            "args": args,
            "working_directory": fields.get("PWD"),
            "parent": out["process"],
        }
    out["linux_auth"]["sudo"] = sudo
    return True


def transform(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record, dict) or "message" not in record:
        raise ValueError(
            f"expected a parsed syslog record with a message, got {type(record).__name__}"
        )
    message = record.get("message")
    if not isinstance(message, str):
        raise ValueError("syslog record's message is not text")
    text = message.strip()
    out = _base(record, text)
    if m := _REPEATED.match(text):  # rsyslog's "message repeated N times: [ ... ]"
        text = m["inner"]
        out["linux_auth"]["repeated"] = int(m["n"])
    app = (record.get("appname") or "").lower()
    if app.startswith("sshd"):
        _sshd(out, text) or _pam(out, text)
    elif app == "sudo":
        _sudo(out, text) or _pam(out, text)
    else:
        _pam(out, text)
    related = out["related"]
    for key in ("ip", "user", "hosts", "hash"):
        if len(related[key]) > 1:
            related[key] = list(dict.fromkeys(related[key]))
    return out
