"""Where an alert's conversation started, per destination: Slack's first `ts`, email's Message-ID.

Kept in the deliveries bucket under `thread.<key>`. The first delivery of an alert claims the
slot before it sends, so two versions of one alert delivered at once cannot both start a thread:
the second waits (fails, and the broker retries) until the first has sent. A claim whose sender
died goes stale and may be taken over.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tarn import events
from tarn.destinations.exceptions import ThreadBusyError

if TYPE_CHECKING:
    from tarn.runtime import Context

STALE_CLAIM_MIN_SECONDS = 30.0


def _key(name: str, alert_id: str, scope: str) -> str:
    return "thread." + events.derive_id("thread", name, scope, alert_id)


def _stale_after(ctx: Context) -> float:
    return max(STALE_CLAIM_MIN_SECONDS, 3 * ctx.cfg.alerting.delivery_timeout_seconds)


def begin(
    ctx: Context, name: str, alert_id: str, event_id: str, scope: str = ""
) -> dict[str, Any] | None:
    """The alert's thread root at `name`, or None when this delivery is to start the thread.

    `scope` separates threads within one destination (Slack: the configured channel, so a
    changed channel starts a new thread). Raises ThreadBusyError while another delivery of the
    alert holds a fresh claim.
    """
    now = time.time()
    stale = _stale_after(ctx)

    def claim(cur: dict[str, Any] | None) -> dict[str, Any] | None:
        if cur and "root" in cur:
            return None
        if cur and cur.get("claimed_by") != event_id and now - cur.get("claimed_at", 0) < stale:
            return None
        return {"claimed_by": event_id, "claimed_at": now}

    _, after = ctx.bus.kv_update_json(
        ctx.cfg.alerting.deliveries_bucket, _key(name, alert_id, scope), claim
    )
    assert after is not None
    if "root" in after:
        return dict(after["root"])
    if after.get("claimed_by") == event_id:
        return None
    raise ThreadBusyError(
        f"destination {name!r}: the first message of alert {alert_id} is being sent by another "
        "delivery; retrying threads this one under it"
    )


def commit(
    ctx: Context, name: str, alert_id: str, event_id: str, root: dict[str, Any], scope: str = ""
) -> None:
    """Record the message this delivery sent as the alert's thread root (first root wins)."""

    def put(cur: dict[str, Any] | None) -> dict[str, Any] | None:
        if cur and "root" in cur:
            return None
        return {"root": root, "event_id": event_id, "at": time.time()}

    ctx.bus.kv_update_json(ctx.cfg.alerting.deliveries_bucket, _key(name, alert_id, scope), put)


def release(ctx: Context, name: str, alert_id: str, event_id: str, scope: str = "") -> None:
    """Give up this delivery's claim (its send failed), so another version may start the thread."""

    def drop(cur: dict[str, Any] | None) -> dict[str, Any] | None:
        if cur and cur.get("claimed_by") == event_id and "root" not in cur:
            return {"released_by": event_id}
        return None

    ctx.bus.kv_update_json(ctx.cfg.alerting.deliveries_bucket, _key(name, alert_id, scope), drop)


def forget(ctx: Context, name: str, alert_id: str, root: dict[str, Any], scope: str = "") -> None:
    """Drop a root the destination no longer knows (deleted message), so the next send starts anew."""

    def drop(cur: dict[str, Any] | None) -> dict[str, Any] | None:
        if cur and cur.get("root") == root:
            return {"forgotten": root}
        return None

    ctx.bus.kv_update_json(ctx.cfg.alerting.deliveries_bucket, _key(name, alert_id, scope), drop)
