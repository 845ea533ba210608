"""Scheduled SQL detections: a `detection.yml` with `query:` (Trino dialect) and `schedule:` (cron).

Run by a Kubernetes CronJob (`tarn detections run-scheduled`) or a PingSource event to the
scheduled_detections function. Each detection runs once per cron tick that has passed since its
last run (state in a NATS key-value bucket); every result row is a rule match. The match event's
id derives from the detection and the tick, so a repeated run of the same tick is dropped as a
duplicate, and the alert manager folds overlapping windows into the same alert by dedupe key.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from tarn import events, query
from tarn.detection import Detection, detection_dirs, load_all, to_jsonable
from tarn.exceptions import TarnError
from tarn.runtime import Context

STATE_BUCKET = "tarn_schedules"
log = logging.getLogger("tarn.scheduled")


def scheduled(ctx: Context) -> list[Detection]:
    return [d for d in load_all(detection_dirs(ctx.cfg.config_dir)) if d.enabled and d.query]


def last_tick(schedule: str, now: datetime) -> datetime:
    """The most recent time at or before `now` that the cron expression fires."""
    it = croniter(schedule, now)
    nxt = it.get_next(datetime)
    if nxt == now:
        return now
    return croniter(schedule, now).get_prev(datetime)


def _match(det: Detection, row: dict[str, Any], tick: datetime, position: int) -> dict[str, Any]:
    ts = row.get("ts") or tick
    return {
        "position": position,
        "ts": ts.isoformat() if isinstance(ts, datetime) else str(ts),
        "table": "scheduled",
        "event_id": row.get("event_id"),
        "ingest_id": None,
        "title": str(row.get("title") or det.name),
        "dedupe": str(row.get("dedupe") or det.id),
        "severity": det.severity,
        "context": to_jsonable({k: v for k, v in row.items() if k not in ("title", "dedupe")}),
        "runbook": det.runbook,
        "reference": det.reference,
        "destinations": list(det.destinations),
    }


def run_due(ctx: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Run every scheduled detection whose tick has come; emit its rows as rule matches."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    report: list[dict[str, Any]] = []
    existing = set(ctx.lake.table_names())
    for det in scheduled(ctx):
        assert det.query is not None and det.schedule is not None
        tick = last_tick(det.schedule, now)
        state = ctx.bus.kv_get_json(STATE_BUCKET, det.id) or {}
        if state.get("last_tick") and datetime.fromisoformat(state["last_tick"]) >= tick:
            continue
        missing = [t for t in det.tables if t not in existing]
        if missing:
            # No data yet for this detection: nothing to match, and nothing to wait for.
            ctx.bus.kv_put_json(STATE_BUCKET, det.id, {"last_tick": tick.isoformat(), "rows": 0})
            report.append(
                {
                    "detection": det.id,
                    "tick": tick.isoformat(),
                    "matches": 0,
                    "engine": f"skipped: no table {', '.join(missing)}",
                }
            )
            continue
        try:
            result = query.run(ctx.cfg, det.query)
        except TarnError as exc:
            # One broken query must not stop the others; its tick is retried on the next run.
            log.error("scheduled detection %s failed: %s", det.id, exc)
            report.append(
                {
                    "detection": det.id,
                    "tick": tick.isoformat(),
                    "matches": 0,
                    "engine": f"error: {exc}",
                }
            )
            continue
        matches = [_match(det, row, tick, i) for i, row in enumerate(result.as_dicts())]
        if matches:
            body = {
                "detection": det.id,
                "name": det.name,
                "threshold": det.threshold,
                "window_minutes": det.window_minutes,
                "tags": list(det.tags),
                "batch_id": f"{det.id}@{tick.isoformat()}",
                "ingest_id": None,
                "matches": matches,
            }
            ctx.emit(
                [
                    events.make_event(
                        events.RULE_MATCHED,
                        "scheduled-detections",
                        body,
                        id_=events.derive_id(det.id, tick.isoformat()),
                    )
                ]
            )
        ctx.bus.kv_put_json(
            STATE_BUCKET, det.id, {"last_tick": tick.isoformat(), "rows": len(matches)}
        )
        report.append(
            {
                "detection": det.id,
                "tick": tick.isoformat(),
                "matches": len(matches),
                "engine": result.engine,
            }
        )
    return report


__all__ = ["last_tick", "run_due", "scheduled"]


def main() -> None:
    """The local runner's scheduler (`tarn dev up` starts it): a tick every `--every` seconds."""
    import argparse
    import time

    from tarn import runtime

    parser = argparse.ArgumentParser(prog="python -m tarn.scheduled", description=main.__doc__)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between checks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ctx = runtime.context()
    log.info("scheduler up: %d scheduled detection(s)", len(scheduled(ctx)))
    while True:
        try:
            for line in run_due(ctx):
                log.info(
                    "ran %s for tick %s: %s matches (%s)",
                    line["detection"],
                    line["tick"],
                    line["matches"],
                    line["engine"],
                )
        except Exception:  # the next tick tries again; a broken run must not end the scheduler
            log.exception("scheduled run failed")
        time.sleep(args.every)


if __name__ == "__main__":
    main()
