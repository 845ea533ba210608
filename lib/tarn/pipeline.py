"""The transformer's and the lake writer's work, one CloudEvent in, CloudEvents out."""

from __future__ import annotations

import logging
from typing import Any

from cloudevents.http import CloudEvent

from tarn import events, logsources
from tarn._failpoints import failpoint
from tarn.lake import SIDELINE_TABLE
from tarn.normalize import normalize
from tarn.runtime import Context

log = logging.getLogger("tarn.pipeline")


def transform(ctx: Context, event: CloudEvent) -> list[dict[str, Any]]:
    """Raw object -> normalized Parquet batches in the lake bucket's staging area.

    Emits one dev.tarn.batch.normalized.v1 per chunk as soon as it is written; ids derive from
    the raw event's id and the chunk index, so a retried run emits the same events.
    """
    data = events.data_of(event)
    source = logsources.get(data["log_source"], ctx.cfg.config_dir)
    ingest_id = data.get("ingest_id") or event["id"]
    bucket = ctx.cfg.storage.lake_bucket
    emitted = []
    with ctx.store.open(data["bucket"], data["key"]) as raw:
        for chunk in normalize(raw, source, ingest_id, ctx.cfg.ingest.batch_records):
            batch_id = events.derive_id(event["id"], chunk.index)
            prefix = f"staging/{source.name}/{ingest_id}/{chunk.index:05d}"
            tables = []
            for table, rows in chunk.tables.items():
                key = f"{prefix}-{table}.parquet"
                ctx.put_parquet(bucket, key, rows)
                tables.append({"table": table, "bucket": bucket, "key": key, "rows": rows.num_rows})
            sideline = None
            if chunk.sideline.num_rows:
                key = f"{prefix}-sideline.parquet"
                ctx.put_parquet(bucket, key, chunk.sideline)
                sideline = {
                    "table": SIDELINE_TABLE,
                    "bucket": bucket,
                    "key": key,
                    "rows": chunk.sideline.num_rows,
                }
            out = {
                "batch_id": batch_id,
                "ingest_id": ingest_id,
                "log_source": source.name,
                "chunk": chunk.index,
                "final": chunk.final,
                "chunks": chunk.index + 1 if chunk.final else None,
                "tables": tables,
                "sideline": sideline,
                "counts": {"good": chunk.rows, "sidelined": chunk.sideline.num_rows},
                "raw": {"bucket": data["bucket"], "key": data["key"]},
            }
            ctx.emit(
                [
                    events.make_event(
                        events.BATCH_NORMALIZED,
                        "transformer",
                        out,
                        id_=batch_id,
                        subject=data["key"],
                    )
                ]
            )
            emitted.append(out)
    return emitted


def write_lake(ctx: Context, event: CloudEvent) -> dict[str, Any]:
    """Commit a normalized batch (its tables and its sideline) exactly once, then emit."""
    data = events.data_of(event)
    batch_id = data["batch_id"]
    parts = list(data["tables"]) + ([data["sideline"]] if data.get("sideline") else [])
    results = []
    for part in parts:
        rows = ctx.get_parquet(part["bucket"], part["key"])
        result = ctx.lake.commit(part["table"], rows, batch_id)
        results.append({"table": part["table"], "rows": result.rows, "skipped": result.skipped})
    failpoint("lake_writer.after_commit")
    out = {
        "batch_id": batch_id,
        "ingest_id": data["ingest_id"],
        "log_source": data["log_source"],
        "chunk": data["chunk"],
        "final": data["final"],
        "chunks": data.get("chunks"),
        "tables": results,
    }
    ctx.emit(
        [
            events.make_event(
                events.LAKE_COMMITTED,
                "lake-writer",
                out,
                id_=events.derive_id(event["id"], "committed"),
            )
        ]
    )
    return out


def dead_letter(ctx: Context, event: CloudEvent) -> int:
    """Keep a dead letter durably in the dead-letter stream (inspect with `tarn dlq`)."""
    from cloudevents.conversion import to_json

    attrs = event.get_attributes()
    trigger = str(attrs.get("tarntrigger") or "unknown")
    msg_id = events.derive_id(event["id"], attrs.get("knativeerrordest", ""), "dead-letter")
    return ctx.bus.publish(
        f"{ctx.cfg.nats.dead_letter_subject}.{trigger}",
        to_json(event),
        headers={"Nats-Msg-Id": msg_id},
    )


MATCHES_PER_EVENT = 2000


def _detector(ctx: Context) -> Any:
    from tarn.detection import Detector, detection_dirs, load_all

    # Loaded once per process: detections are code shipped with the deployment.
    det = getattr(ctx, "_detector", None)
    if det is None:
        det = Detector(load_all(detection_dirs(ctx.cfg.config_dir)))
        ctx._detector = det  # type: ignore[attr-defined]
    return det


def detect_batch(ctx: Context, event: CloudEvent) -> dict[str, Any]:
    """Run the real-time detections on a normalized batch; emit rule matches, then progress."""
    data = events.data_of(event)
    detector = _detector(ctx)
    out_events = []
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    records = 0
    for part in data["tables"]:
        if part["table"] not in detector.by_table:
            records += part["rows"]
            continue
        rows = ctx.get_parquet(part["bucket"], part["key"]).to_pylist()
        result = detector.run(part["table"], rows)
        records += result.records
        for det_id, err in result.errors.items():
            errors[det_id] = errors.get(det_id, 0) + err
        for det_id, matches in result.matches.items():
            det = next(d for d in detector.by_table[part["table"]] if d.id == det_id)
            counts[det_id] = counts.get(det_id, 0) + len(matches)
            for start in range(0, len(matches), MATCHES_PER_EVENT):
                body = {
                    "detection": det.id,
                    "name": det.name,
                    "threshold": det.threshold,
                    "window_minutes": det.window_minutes,
                    "tags": list(det.tags),
                    "batch_id": data["batch_id"],
                    "ingest_id": data["ingest_id"],
                    "matches": matches[start : start + MATCHES_PER_EVENT],
                }
                out_events.append(
                    events.make_event(
                        events.RULE_MATCHED,
                        "detector",
                        body,
                        id_=events.derive_id(event["id"], part["table"], det.id, start),
                    )
                )
    summary = {
        "batch_id": data["batch_id"],
        "ingest_id": data["ingest_id"],
        "chunk": data["chunk"],
        "final": data["final"],
        "chunks": data.get("chunks"),
        "records": records,
        "matches": counts,
        "errors": errors,
    }
    out_events.append(
        events.make_event(
            events.BATCH_DETECTED,
            "detector",
            summary,
            id_=events.derive_id(event["id"], "detected"),
        )
    )
    ctx.emit(out_events)
    return summary
