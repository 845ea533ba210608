"""What the senders share: settings lookup with a helpful error, HTTP posting, text limits."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx

from tarn.config import DestinationConfig
from tarn.destinations.exceptions import DeliveryError, DestinationConfigError

if TYPE_CHECKING:
    from tarn.runtime import Context

SEVERITIES = ("info", "low", "medium", "high", "critical")
_ATTRIBUTE = {"from": "from_"}  # `from` is a Python keyword
_TECHNIQUE = re.compile(r"attack\.(t\d{4})(?:\.(\d{3}))?", re.IGNORECASE)


def env_name(name: str, setting: str) -> str:
    return f"TARN_DESTINATIONS__{name.upper()}__{setting.upper()}"


def require(name: str, dest: DestinationConfig, *settings: str) -> None:
    """Fail with the variables to set when `dest` lacks any of `settings`."""
    missing = [s for s in settings if not getattr(dest, _ATTRIBUTE.get(s, s))]
    if missing:
        names = ", ".join(env_name(name, s) for s in missing)
        raise DestinationConfigError(
            f"destination {name!r} (type {dest.type}) needs {', '.join(missing)}: set {names}"
        )


def post(
    ctx: Context,
    name: str,
    url: str,
    *,
    headers: dict[str, str],
    json_body: Any = None,
    content: bytes | None = None,
) -> httpx.Response:
    """POST once; a transport failure is a DeliveryError (the broker retries with backoff)."""
    try:
        return ctx.http.post(
            url,
            json=json_body,
            content=content,
            headers=headers,
            timeout=ctx.cfg.alerting.delivery_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(
            f"destination {name!r}: could not reach {url}: {type(exc).__name__}: {exc}"
        ) from exc


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def severity_of(alert: dict[str, Any]) -> str:
    sev = str(alert.get("severity", "")).lower()
    return sev if sev in SEVERITIES else "medium"


def technique(tag: str) -> tuple[str, str] | None:
    """A MITRE ATT&CK technique tag (attack.t1078.004) as (label, page URL); None for others."""
    m = _TECHNIQUE.fullmatch(tag)
    if not m:
        return None
    tech, sub = m.group(1).upper(), m.group(2)
    path = f"{tech}/{sub}" if sub else tech
    return (f"{tech}.{sub}" if sub else tech), f"https://attack.mitre.org/techniques/{path}/"
