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
from functools import lru_cache, reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import columnar as col
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


def _ts(record: dict[str, Any], now: datetime | None = None) -> datetime:
    text = record.get("timestamp")
    if not isinstance(text, str) or not text.strip() or text.strip() == "-":
        raise ValueError("syslog line has no timestamp")
    text = text.strip()
    if text[:4].isdigit():  # RFC 5424 / RFC 3339, also rsyslog's high-precision RFC 3164 form
        ts = datetime.fromisoformat(text)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return _ts_3164(text, now)


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


# --- sudo ---------------------------------------------------------------------------------


def _sudo_parse(message: str) -> tuple[str, dict[str, str], str | None, str] | None:
    """`user : [problem ; ]KEY=value ; ... COMMAND=...` -> (user, fields, problem, command),
    None where the message is not sudo's."""
    user, sep, rest = message.strip().partition(" : ")
    if not sep or " " in user:
        return None
    head, _, command = rest.partition("COMMAND=")
    fields: dict[str, str] = {}
    problems = []
    for part in head.split(" ; "):
        part = part.strip().rstrip(";").strip()
        key, eq, value = part.partition("=")
        if eq and key.isupper():
            fields[key] = value
        elif part:
            problems.append(part)
    return user, fields, "; ".join(problems) or None, command.strip()


def _sudo_kind(problem: str | None) -> str:
    """The _EVENTS key of a sudo line, by its problem (None: the command ran)."""
    if problem is None:
        return "sudo_command"
    if "incorrect password" in problem or "authentication" in problem:
        return "sudo_auth_failure"
    if "NOT in sudoers" in problem or "not allowed" in problem:
        return "sudo_denied"
    return "sudo_error"


# --- output -------------------------------------------------------------------------------

# action, category, type, outcome of each kind of line (shared with the batch version)
_EVENTS: dict[str, tuple[str, list[str], list[str], str | None]] = {
    "ssh_accepted": ("ssh_login", ["authentication", "session"], ["start"], "success"),
    "ssh_failed": ("ssh_login", ["authentication"], ["start"], "failure"),
    "ssh_invalid_user": ("ssh_invalid_user", ["authentication"], ["info"], "failure"),
    "ssh_max_auth_attempts": ("ssh_max_auth_attempts", ["authentication"], ["info"], "failure"),
    "ssh_disconnect": ("ssh_disconnect", ["session"], ["end"], None),
    "ssh_disconnecting": ("ssh_disconnect", ["session"], ["end"], "failure"),
    "session_opened": ("session_opened", ["session"], ["start"], "success"),
    "session_closed": ("session_closed", ["session"], ["end"], None),
    "pam_failure": ("pam_authentication_failure", ["authentication"], ["info"], "failure"),
    "sudo_command": ("sudo_command", ["process"], ["start"], "success"),
    "sudo_auth_failure": ("sudo_auth_failure", ["authentication"], ["info"], "failure"),
    "sudo_denied": ("sudo_denied", ["process", "iam"], ["denied"], "failure"),
    "sudo_error": ("sudo_error", ["process"], ["info"], "failure"),
}


def _sd_text(sd: Any) -> str | None:
    return json.dumps(sd, separators=(",", ":"), sort_keys=True) if sd else None


def _base(record: dict[str, Any], message: str) -> dict[str, Any]:
    facility = digits_int_or_none(record.get("facility"))
    severity = digits_int_or_none(record.get("severity"))
    host = record.get("hostname") or None
    app = record.get("appname") or None
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
        "linux_auth": {"structured_data": _sd_text(record.get("structured_data"))},
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


def _event(out: dict[str, Any], kind: str) -> None:
    action, category, types, outcome = _EVENTS[kind]
    out["event"].update(action=action, category=list(category), type=list(types), outcome=outcome)


def _sshd(out: dict[str, Any], message: str) -> bool:
    ssh: dict[str, Any] = {"preauth": message.endswith("[preauth]") or None}
    out["linux_auth"]["ssh"] = ssh
    out["network"] = {"protocol": "ssh"}
    if m := _ACCEPTED.match(message):
        _event(out, "ssh_accepted")
    elif m := _FAILED.match(message):
        _event(out, "ssh_failed")
        ssh["invalid_user"] = bool(m["invalid"])
    elif m := _INVALID.match(message):
        _event(out, "ssh_invalid_user")
        ssh["invalid_user"] = True
    elif m := _MAX_ATTEMPTS.match(message):
        _event(out, "ssh_max_auth_attempts")
        ssh["invalid_user"] = bool(m["invalid"])
    elif (m := _DISCONNECTED.match(message)) or (m := _CLOSED.match(message)):
        _event(out, "ssh_disconnect")
        if m["who"]:
            ssh["invalid_user"] = m["who"] == "invalid user"
    elif m := _RECEIVED.match(message):
        _event(out, "ssh_disconnect")
        ssh["disconnect_code"] = int(m["code"])
        out["event"]["reason"] = m["reason"]
    elif m := _DISCONNECTING.match(message):  # sshd ends the connection itself
        _event(out, "ssh_disconnecting")
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
        _event(out, f"session_{m['state']}")
        _set_user(out, m["user"])
        out["user"]["id"] = m["uid"]
        pam = {"module": m["module"], "service": m["service"], "by_user": m["by"] or None}
        if m["by"]:
            out["related"]["user"].append(m["by"])
    elif m := _PAM_UNKNOWN.match(message):
        _event(out, "pam_failure")
        out["event"]["reason"] = "user unknown"
        pam = {"module": m["module"], "service": m["service"]}
    elif (m := _PAM_AUTH_FAILURE.match(message)) or (m := _PAM_MORE.match(message)):
        kv = _kv(m["kv"])
        _event(out, "pam_failure")
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
    parsed = _sudo_parse(message)
    if parsed is None:
        return False
    user, fields, problem, command = parsed
    _event(out, _sudo_kind(problem))
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
    if command:  # text after COMMAND= (there is none without it)
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


# -- the same rows, a batch at a time (see tarn.logsources.columnar) ------------------------------
# On printable ASCII (ascii_is_printable), Arrow's regexes (RE2) read \S, \d, \w, `.` and `$`
# as Python's re does, so the patterns above run as they are; re.match is a search anchored
# at the start.
# How the patterns (and _REPEATED, and sudo's " : ") start: text that is not printable ASCII
# and has none of these matches none of them, and transform() reads the rest.
_OPENINGS = (
    r"^(?:Accepted |Failed |Invalid user |error: |maximum |Disconnect|Connection |Received "
    r"|pam_|PAM |message repeated )| : "
)
_DIGITS = r"^[0-9]{1,18}$"  # text int() reads, and whose number fits a long
_LONG_DIGITS = 18
_BIG = 2**59  # facility * 8 + severity still fits a long for numbers up to this
_TS = pa.timestamp("us", tz="UTC")
_TEXT = pa.string()
_LIST = pa.list_(pa.string())
_KV_KEYS = ("user", "rhost", "tty", "ruser", "logname")
_KV_TYPE = pa.struct([(k, _TEXT) for k in _KV_KEYS])
_SUDO_TYPE = pa.struct(
    [
        *((k, _TEXT) for k in ("user", "kind", "error", "tty", "group", "run_as", "pwd")),
        *((k, _TEXT) for k in ("command", "executable", "name")),
        ("args", _LIST),
    ]
)
_EVENT_TYPE = pa.struct(
    [("action", _TEXT), ("category", _LIST), ("type", _LIST), ("outcome", _TEXT)]
)


def _match(text: pa.Array, pattern: re.Pattern[str], starts: tuple[str, ...]) -> pa.Array:
    """pattern.match per value, as a struct of its groups (null where it does not match);
    `starts` are how a match starts: without any, the regex does not run."""
    regex = f"^(?:{pattern.pattern})"
    if not any(pc.any(pc.starts_with(text, start)).as_py() for start in starts):
        return pa.nulls(len(text), pc.extract_regex(pa.array([], _TEXT), regex).type)
    return pc.extract_regex(text, regex)


def _pick(n: int, type_: pa.DataType, choices: list[tuple[pa.Array, Any]]) -> pa.Array:
    """Per record, the value of the choice whose mask holds (the masks are exclusive)."""
    out = pa.nulls(n, type_)
    for mask, values in choices:
        out = pc.if_else(mask, values, out)
    return out


def _spread(mask: pa.Array, values: pa.Array) -> pa.Array:
    """`values`, one per record where `mask` holds, in place among all records (null elsewhere)."""
    at = pc.subtract(pc.cumulative_sum(mask.cast(pa.int64())), 1)
    return values.take(pc.if_else(mask, at, None))


def _some(values: pa.Array) -> pa.Array:
    """`value or None` per value of text."""
    return pc.if_else(pc.equal(values, ""), None, values)  # a null condition gives null


def _ints(digits: pa.Array) -> tuple[pa.Array, pa.Array]:
    """int() of text of ASCII digits ("" and null: None), and where it would not fit a long."""
    digits = _some(digits)
    big = pc.fill_null(pc.greater(pc.utf8_length(digits), _LONG_DIGITS), False)
    return pc.if_else(big, None, digits).cast(pa.int64()), big


def _stripped(message: pa.Array) -> pa.Array:
    """str.strip() per value: in Python where there is more than printable ASCII, which is rare
    (in printable ASCII, the space is the only whitespace)."""
    text = pc.utf8_trim(message, " ")
    odd = pc.invert(pc.ascii_is_printable(message))
    if not pc.any(odd).as_py():
        return text
    return pc.replace_with_mask(text, odd, col.per_value(str.strip, message.filter(odd), _TEXT))


def _pids(procid: pa.Array) -> tuple[pa.Array, pa.Array]:
    """digits_int_or_none per value, and where it raises or gives more than a long holds."""
    plain = pc.fill_null(pc.match_substring_regex(procid, _DIGITS), False)
    pid = pc.if_else(plain, procid, None).cast(pa.int64())
    odd = pc.and_(pc.is_valid(procid), pc.invert(plain))
    if not pc.any(odd).as_py():
        return pid, pa.repeat(False, len(procid))
    others = procid.filter(odd)
    pid = pc.replace_with_mask(pid, odd, col.per_value(_pid_or_none, others, pa.int64()))
    bad = pc.replace_with_mask(
        pa.repeat(False, len(procid)), odd, col.per_value(_pid_unusable, others, pa.bool_())
    )
    return pid, bad


def _pid_or_none(value: str) -> int | None:
    return None if _pid_unusable(value) else digits_int_or_none(value)


def _pid_unusable(value: str) -> bool:
    try:
        pid = digits_int_or_none(value)
    except ValueError:  # str.isdigit() holds for digits int() does not read, like "²"
        return True
    return pid is not None and not -(2**63) <= pid < 2**63


def _ts_or_none(text: str, now: datetime) -> datetime | None:
    try:
        return _ts({"timestamp": text}, now)
    except Exception:  # transform() says why
        return None


# RFC 3339 as rsyslog writes it, which Arrow's cast reads as datetime.fromisoformat does
# (a day the month does not have fails the cast: then Python reads them all)
_ISO = (
    r"^[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
# RFC 3164's `Mmm dd hh:mm:ss` (the day padded with a space or a zero), which _ts_3164 reads
# without a year or a zone
_BSD = (
    r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?: [1-9]|0[1-9]|[12][0-9]|3[01])"
    r" (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)
_MONTH_NUMBERS = {m.title(): f"{i:02d}" for m, i in _MONTHS.items()}
_MONTH_DAYS = {"02": 28, "04": 30, "06": 30, "09": 30, "11": 30}  # Feb 29: in Python


def _timestamps(values: pa.Array, now: datetime) -> pa.Array:
    """_ts per value (null where it raises), with `now` for the year RFC 3164 leaves out."""
    keys = pc.dictionary_encode(values)  # RFC 3164 times repeat within the second
    return _distinct_timestamps(keys.dictionary, now).take(keys.indices)


def _distinct_timestamps(values: pa.Array, now: datetime) -> pa.Array:
    n = len(values)
    out = pa.nulls(n, _TS)
    done = pa.repeat(False, n)
    iso = pc.fill_null(pc.match_substring_regex(values, _ISO), False)
    if pc.any(iso).as_py():
        try:
            out = pc.if_else(iso, values, None).cast(_TS)
            done = iso
        except pa.ArrowInvalid:
            pass
    bsd = pc.fill_null(pc.match_substring_regex(values, _BSD), False)
    month = col.lookup(
        pc.if_else(bsd, pc.utf8_slice_codeunits(values, 0, 3), None), _MONTH_NUMBERS, None, _TEXT
    )
    day = pc.replace_substring(pc.utf8_slice_codeunits(values, 4, 6), " ", "0")
    last = col.lookup(month, _MONTH_DAYS, 31, pa.int64())
    bsd_ok = pc.fill_null(pc.less_equal(pc.if_else(bsd, day, None).cast(pa.int64()), last), False)
    if pc.any(bsd_ok).as_py():
        # the current year, or the one before where that puts the time over a day ahead
        clock = pc.utf8_slice_codeunits(values, 7, 15)
        rest = pc.binary_join_element_wise(month, "-", day, "T", clock, "Z", "")
        rest = pc.if_else(bsd_ok, rest, None)
        this_year = pc.binary_join_element_wise(f"{now.year:04d}-", rest, "").cast(_TS)
        last_year = pc.binary_join_element_wise(f"{now.year - 1:04d}-", rest, "").cast(_TS)
        ahead = pc.greater(this_year, pa.scalar(now + _FUTURE_SLACK, _TS))
        out = pc.if_else(bsd_ok, pc.if_else(ahead, last_year, this_year), out)
        done = pc.or_(done, bsd_ok)
    other = pc.and_(pc.is_valid(values), pc.invert(done))
    if not pc.any(other).as_py():
        return out
    read = col.per_value(lambda t: _ts_or_none(t, now), values.filter(other), _TS)
    return pc.replace_with_mask(out, other, read)


def _sd_texts(values: list[Any]) -> tuple[pa.Array, pa.Array]:
    """_sd_text per value, and where it raises."""
    n = len(values)
    given = [i for i, value in enumerate(values) if value is not None]
    if not given:
        return pa.nulls(n, _TEXT), pa.repeat(False, n)
    texts: list[str | None] = [None] * n
    bad = [False] * n
    for i in given:
        try:
            texts[i] = _sd_text(values[i])
        except Exception:  # transform() says why
            bad[i] = True
    return pa.array(texts, _TEXT), pa.array(bad, pa.bool_())


def _kv_columns(text: str) -> dict[str, str | None]:
    kv = _kv(text)
    return {k: kv.get(k) for k in _KV_KEYS}


# pam_unix's key=value pairs as it writes them: where the whole text is so, _KV finds just
# these pairs (each value runs to the next space), so _kv gives each non-empty value
_PAM_KV = (
    r"^ logname=(?P<logname>\S*) uid=\S* euid=\S* tty=(?P<tty>\S*) ruser=(?P<ruser>\S*)"
    r" rhost=(?P<rhost>\S*)(?: +user=(?P<user>\S*))?$"
)


def _kvs(texts: pa.Array) -> pa.Array:
    """_kv_columns per text (of printable ASCII), by a regex where pam_unix wrote it."""
    found = pc.extract_regex(texts, _PAM_KV)
    values = {k: _some(pc.struct_field(found, k)) for k in _KV_KEYS}
    other = pc.is_null(found)
    if pc.any(other).as_py():
        read = col.per_value(_kv_columns, texts.filter(other), _KV_TYPE)
        values = {k: pc.replace_with_mask(v, other, read.field(k)) for k, v in values.items()}
    return pa.StructArray.from_arrays(list(values.values()), fields=list(_KV_TYPE))


# dotted IPv4 without leading zeros: strict_ip_or_none gives it as it is
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"


def _ips(addresses: pa.Array) -> pa.Array:
    """_ip per address: dotted IPv4 as it is, the others in Python."""
    v4 = pc.fill_null(pc.match_substring_regex(addresses, _IPV4), False)
    other = pc.and_(pc.is_valid(addresses), pc.invert(v4))
    if not pc.any(other).as_py():
        return pc.if_else(v4, addresses, None)
    return pc.replace_with_mask(
        pc.if_else(v4, addresses, None), other, col.per_value(_ip, addresses.filter(other), _TEXT)
    )


def _sudo_columns(message: str) -> dict[str, Any] | None:
    """What _sudo takes from a message (None where it is not sudo's)."""
    parsed = _sudo_parse(message)
    if parsed is None:
        return None
    user, fields, problem, command = parsed
    args = command.split()
    return {
        "user": user,
        "kind": _sudo_kind(problem),
        "error": problem,
        "tty": fields.get("TTY"),
        "group": fields.get("GROUP"),
        "run_as": fields.get("USER"),
        "pwd": fields.get("PWD"),
        "command": command or None,
        "executable": args[0] if args else None,
        "name": args[0].rsplit("/", 1)[-1] if args else None,
        "args": args or None,
    }


def _event_columns(kind: str) -> dict[str, Any]:
    action, category, types, outcome = _EVENTS[kind]
    return {"action": action, "category": category, "type": types, "outcome": outcome}


# the patterns _sshd and _pam try, in their order, with how a match starts
_SSH_CASES = (
    ("ssh_accepted", _ACCEPTED, ("Accepted ",)),
    ("ssh_failed", _FAILED, ("Failed ",)),
    ("ssh_invalid_user", _INVALID, ("Invalid user ",)),
    ("ssh_max_auth_attempts", _MAX_ATTEMPTS, ("error: maximum ", "maximum ")),
    ("ssh_disconnect", _DISCONNECTED, ("Disconnected from ",)),
    ("ssh_disconnect", _CLOSED, ("Connection ",)),
    ("ssh_disconnect", _RECEIVED, ("Received disconnect from ",)),
    ("ssh_disconnecting", _DISCONNECTING, ("Disconnecting ",)),
)
_PAM_CASES = (
    (_PAM_SESSION, ("pam_",)),
    (_PAM_UNKNOWN, ("pam_",)),
    (_PAM_AUTH_FAILURE, ("pam_",)),
    (_PAM_MORE, ("PAM ",)),
)


def _app_kind(app: str) -> str:
    """How transform() reads a program's messages: as sshd's, sudo's or others' (PAM's)."""
    app = app.lower()
    return "s" if app.startswith("sshd") else "u" if app == "sudo" else "o"


def _message_columns(kinds: pa.Array, message: pa.Array) -> dict[str, pa.Array]:
    """What transform() makes of a message, by how its program is read (_app_kind): with
    Arrow's regexes on printable ASCII; sudo's fields and PAM's key=value pairs in Python."""
    n = len(message)
    text = _stripped(message)
    # text a pattern might match outside printable ASCII: transform() reads it
    to_rows = pc.invert(pc.ascii_is_printable(text))
    if pc.any(to_rows).as_py():
        openings = pc.match_substring_regex(text.filter(to_rows), _OPENINGS)
        to_rows = pc.replace_with_mask(to_rows, to_rows, openings)
    rep = _match(text, _REPEATED, ("message repeated ",))
    inner = pc.if_else(pc.is_valid(rep), pc.struct_field(rep, "inner"), text)
    sshd = pc.equal(kinds, "s")
    sudo = pc.equal(kinds, "u")

    # which pattern decides each message, in transform()'s order: `chosen` holds once one has
    ssh = [(kind, _match(inner, p, starts)) for kind, p, starts in _SSH_CASES]
    sel: list[pa.Array] = []
    chosen = pa.repeat(False, n)
    for _, found in ssh:
        sel.append(pc.and_(pc.and_(sshd, pc.is_valid(found)), pc.invert(chosen)))
        chosen = pc.or_(chosen, sel[-1])
    sudo_cols = _spread(sudo, col.per_value(_sudo_columns, inner.filter(sudo), _SUDO_TYPE))
    is_sudo = pc.fill_null(pc.is_valid(sudo_cols), False)
    chosen = pc.or_(chosen, is_sudo)
    pam = [_match(inner, p, starts) for p, starts in _PAM_CASES]
    pam_sel = []
    for found in pam:
        pam_sel.append(pc.and_(pc.is_valid(found), pc.invert(chosen)))
        chosen = pc.or_(chosen, pam_sel[-1])
    session, _, failure, more = pam
    is_session, is_unknown, is_failure, is_more = pam_sel
    is_pam = pc.or_(pc.or_(is_session, is_unknown), pc.or_(is_failure, is_more))
    pam_fail = pc.or_(is_failure, is_more)
    kv_text = pc.if_else(is_failure, pc.struct_field(failure, "kv"), pc.struct_field(more, "kv"))
    kv = _spread(pam_fail, _kvs(kv_text.filter(pam_fail)))

    def field(values: pa.Array, name: str) -> pa.Array:
        return pc.struct_field(values, name)

    # no text starts as two of sshd's patterns do: at most one of them matches a message
    is_ssh = reduce(pc.or_, sel)

    def ssh_group(name: str) -> list[tuple[pa.Array, Any]]:
        """The group `name` of the sshd pattern that decides a message, where one does."""
        groups = [field(f, name) for _, f in ssh if f.type.get_field_index(name) >= 0]
        return [(is_ssh, pc.coalesce(*groups))]

    kind = _pick(
        n,
        _TEXT,
        [
            *((mask, k) for mask, (k, _) in zip(sel, ssh, strict=True)),
            (is_sudo, field(sudo_cols, "kind")),
            (is_session, pc.binary_join_element_wise("session_", field(session, "state"), "")),
            (pc.or_(is_unknown, pam_fail), "pam_failure"),
        ],
    )
    event = col.per_value(_event_columns, kind, _EVENT_TYPE)
    reason = [
        *ssh_group("reason"),
        (is_unknown, "user unknown"),
        (is_sudo, field(sudo_cols, "error")),
    ]

    # source: an address sshd logged, or PAM's rhost
    address = _some(_pick(n, _TEXT, [*ssh_group("ip"), (pam_fail, field(kv, "rhost"))]))
    ip = _ips(address)
    port, big_port = _ints(_pick(n, _TEXT, ssh_group("port")))

    user_name = [
        *ssh_group("user"),
        (is_session, field(session, "user")),
        (pam_fail, field(kv, "user")),
        (is_sudo, field(sudo_cols, "user")),
    ]
    user = _some(_pick(n, _TEXT, user_name))
    run_as = pc.if_else(is_sudo, _some(field(sudo_cols, "run_as")), None)
    by_user = pc.if_else(is_session, _some(field(session, "by")), None)

    fingerprint = _some(_pick(n, _TEXT, ssh_group("fingerprint")))
    key_type = pc.if_else(pc.is_valid(fingerprint), _pick(n, _TEXT, ssh_group("key_type")), None)
    invalid_user = [
        (sel[1], col.truthy(field(ssh[1][1], "invalid"))),
        (sel[2], True),
        (sel[3], col.truthy(field(ssh[3][1], "invalid"))),
        *(
            (
                pc.and_(sel[i], col.truthy(field(ssh[i][1], "who"))),
                pc.equal(field(ssh[i][1], "who"), "invalid user"),
            )
            for i in (4, 5, 7)
        ),
    ]
    code, big_code = _ints(pc.if_else(sel[6], field(ssh[6][1], "code"), None))
    rep_n, big_rep = _ints(field(rep, "n"))
    more_n, big_more = _ints(pc.if_else(is_more, field(more, "n"), None))
    for big in (big_port, big_code, big_rep, big_more):  # more than a long holds
        to_rows = pc.or_(to_rows, big)

    # sudo's command: a process of its own, with the one that logged as its parent
    command = pc.if_else(is_sudo, field(sudo_cols, "command"), None)
    has_command = pc.is_valid(command)

    def cmd(name: str) -> pa.Array:
        return pc.if_else(has_command, field(sudo_cols, name), None)

    def pam_field(name: str) -> pa.Array:
        return _pick(
            n, _TEXT, [(m, field(f, name)) for m, f in zip(pam_sel[:3], pam[:3], strict=True)]
        )

    return {
        col.ROW_PATH: to_rows,
        "message": text,
        "event.action": pc.fill_null(field(event, "action"), "other"),
        "event.category": field(event, "category"),
        "event.type": pc.fill_null(field(event, "type"), pa.scalar(["info"], _LIST)),
        "event.outcome": field(event, "outcome"),
        "event.reason": _pick(n, _TEXT, reason),
        "process": has_command,  # sudo's command (the record's process is its parent)
        "process.name": cmd("name"),
        "process.executable": cmd("executable"),
        "process.command_line": command,
        "process.args": cmd("args"),
        "process.working_directory": cmd("pwd"),
        "source.ip": ip,
        "source.port": port,
        "source.address": address,
        "source.domain": pc.if_else(pc.is_null(ip), address, None),
        "user.name": user,
        "user.id": pc.if_else(is_session, _some(field(session, "uid")), None),
        "user.effective": pc.is_valid(run_as),
        "user.effective.name": run_as,
        "network.protocol": pc.if_else(sshd, "ssh", None),
        "linux_auth.repeated": pc.if_else(is_more, more_n, rep_n),
        "linux_auth.ssh": sshd,
        "linux_auth.ssh.method": _some(_pick(n, _TEXT, ssh_group("method"))),
        "linux_auth.ssh.invalid_user": _pick(n, pa.bool_(), invalid_user),
        "linux_auth.ssh.preauth": pc.if_else(
            pc.and_(sshd, pc.ends_with(inner, "[preauth]")), True, pa.scalar(None, pa.bool_())
        ),
        "linux_auth.ssh.key_type": key_type,
        "linux_auth.ssh.key_fingerprint": fingerprint,
        "linux_auth.ssh.disconnect_code": code,
        "linux_auth.sudo": is_sudo,
        "linux_auth.sudo.tty": pc.if_else(is_sudo, field(sudo_cols, "tty"), None),
        "linux_auth.sudo.group": pc.if_else(is_sudo, field(sudo_cols, "group"), None),
        "linux_auth.sudo.error": pc.if_else(is_sudo, field(sudo_cols, "error"), None),
        "linux_auth.pam": is_pam,
        "linux_auth.pam.module": pam_field("module"),
        "linux_auth.pam.service": pam_field("service"),
        "linux_auth.pam.by_user": by_user,
        "linux_auth.pam.tty": pc.if_else(pam_fail, field(kv, "tty"), None),
        "linux_auth.pam.ruser": pc.if_else(pam_fail, field(kv, "ruser"), None),
        "linux_auth.pam.logname": pc.if_else(pam_fail, field(kv, "logname"), None),
        "related.user": col.unique_values(user, by_user),
        "related.hash": col.unique_values(fingerprint),
    }


@col.columnar(
    raw={
        "facility": "long",
        "severity": "long",
        "timestamp": "string",
        "hostname": "string",
        "appname": "string",
        "procid": "string",
        "msgid": "string",
        "message": "string",
        "structured_data": "json",
    }
)
def transform_columns(batch: col.Batch) -> dict[str, Any]:
    """transform() for a batch of records: the same rows, built with Arrow compute. What a
    message gives is worked out once per distinct message (and how its program is read)."""
    message = batch["message"]
    app = batch["appname"]
    kinds = pc.fill_null(col.per_value(_app_kind, app, _TEXT), "o")  # no appname: "" in transform()
    keys = pc.dictionary_encode(pc.binary_join_element_wise(kinds, pc.fill_null(message, ""), ""))
    distinct = keys.dictionary
    found = _message_columns(
        pc.utf8_slice_codeunits(distinct, 0, 1), pc.utf8_slice_codeunits(distinct, 1)
    )
    out = {name: values.take(keys.indices) for name, values in found.items()}

    # the record's own process, or the parent of sudo's command
    command = out.pop("process")
    app_name = _some(app)
    pid, bad_pid = _pids(batch["procid"])
    out["process.name"] = pc.if_else(command, out["process.name"], app_name)
    out["process.pid"] = pc.if_else(command, None, pid)
    out["process.parent"] = command
    out["process.parent.name"] = pc.if_else(command, app_name, None)
    out["process.parent.pid"] = pc.if_else(command, pid, None)

    facility, severity = batch["facility"], batch["severity"]
    sd, bad_sd = _sd_texts(batch.values("structured_data"))
    # no message, or one that is not text; numbers beyond a long; and so on: transform() says why
    to_rows = pc.or_(pc.or_(out[col.ROW_PATH], pc.is_null(message)), pc.or_(bad_pid, bad_sd))
    for values in (facility, severity):  # priority = facility * 8 + severity must fit a long
        out_of_range = pc.or_(pc.less(values, -_BIG), pc.greater(values, _BIG))
        to_rows = pc.or_(to_rows, pc.fill_null(out_of_range, False))
    out[col.ROW_PATH] = to_rows
    sshd = pc.equal(kinds, "s")
    return {
        **out,
        "ts": _timestamps(batch["timestamp"], _now()),  # now: once for the batch
        "event.kind": "event",
        "host.hostname": _some(batch["hostname"]),
        "log.syslog.facility.code": facility,
        "log.syslog.severity.code": severity,
        "log.syslog.priority": pc.add(pc.multiply(facility, 8), severity),
        "log.syslog.msgid": _some(batch["msgid"]),
        "network": sshd,
        "linux_auth.structured_data": sd,
    }
