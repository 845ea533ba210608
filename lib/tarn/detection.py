"""Detections: a folder with `detection.yml` and `detect.py`, run on every normalized record.

`detect.py` defines `detect(record) -> bool` and may define `title`, `dedupe`, `severity`,
`alert_context`, `runbook`, `reference`, `destinations` (the names Matano uses), each taking
the record. `detection.yml` holds the metadata and inline tests; it is validated on load.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import yaml

from tarn._paths import shipped
from tarn.exceptions import DetectionError

log = logging.getLogger("tarn.detection")

SEVERITIES = ("info", "low", "medium", "high", "critical")
_MISSING = object()

DETECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "severity"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"},
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "enabled": {"type": "boolean"},
        "tables": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "severity": {"enum": list(SEVERITIES)},
        "threshold": {"type": "integer", "minimum": 1},
        "deduplication_window_minutes": {"type": "integer", "minimum": 1},
        "destinations": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "runbook": {"type": "string"},
        "reference": {"type": "string"},
        "query": {"type": "string"},
        "schedule": {"type": "string"},
        "tests": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "record", "expect"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "record": {"type": "object"},
                            "expect": {"type": "boolean"},
                        },
                    },
                    {
                        # A scheduled detection's test: rows per table; `expect` is the number
                        # of result rows. A ts like "-40m" or "-2h" is that long before now.
                        "type": "object",
                        "required": ["name", "tables", "expect"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "tables": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "object"},
                                },
                            },
                            "expect": {"type": "integer", "minimum": 0},
                        },
                    },
                ]
            },
        },
    },
}


class Record(dict[str, Any]):
    """A normalized record; `deepget("a.b.c", default)` walks nested fields safely."""

    def deepget(self, path: str, default: Any = None) -> Any:
        node: Any = self
        for part in path.split("."):
            if not isinstance(node, Mapping):
                return default
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return default
        return default if node is None else node


@dataclass(frozen=True)
class Detection:
    id: str
    name: str
    severity: str
    tables: tuple[str, ...]
    path: Path
    module: ModuleType | None
    description: str = ""
    enabled: bool = True
    threshold: int = 1
    window_minutes: int = 60
    destinations: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    runbook: str = ""
    reference: str = ""
    query: str | None = None
    schedule: str | None = None
    tests: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    def _fn(self, name: str) -> Callable[..., Any] | None:
        fn = getattr(self.module, name, None) if self.module else None
        return fn if callable(fn) else None

    def detect(self, record: Record) -> bool:
        fn = self._fn("detect")
        if fn is None:
            raise DetectionError(f"{self.path}: detect.py has no detect(record)")
        return bool(fn(record))

    def describe(self, record: Record) -> dict[str, Any]:
        """The alert fields for a matching record (title, dedupe, severity, context, ...)."""

        def call(name: str, default: Any) -> Any:
            fn = self._fn(name)
            return fn(record) if fn else default

        severity = call("severity", self.severity)
        if severity not in SEVERITIES:
            severity = self.severity
        return {
            "title": str(call("title", self.name)),
            "dedupe": str(call("dedupe", self.id)),
            "severity": severity,
            "context": call("alert_context", {}),
            "runbook": str(call("runbook", self.runbook)),
            "reference": str(call("reference", self.reference)),
            "destinations": list(call("destinations", list(self.destinations)) or []),
        }


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tarn_detection_{name}", path)
    if spec is None or spec.loader is None:
        raise DetectionError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise DetectionError(f"{path}: fails to import: {type(exc).__name__}: {exc}") from exc
    return module


def load_detection(folder: Path) -> Detection:
    yml = folder / "detection.yml"
    try:
        spec = yaml.safe_load(yml.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DetectionError(f"{yml}: {exc}") from exc
    errors = sorted(
        jsonschema.Draft202012Validator(DETECTION_SCHEMA).iter_errors(spec),
        key=lambda e: list(e.path),
    )
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(top level)"
        raise DetectionError(f"{yml}: {where}: {err.message}")
    module = _import(folder / "detect.py", spec["id"]) if (folder / "detect.py").exists() else None
    if spec.get("query") is None:
        if module is None or not callable(getattr(module, "detect", None)):
            raise DetectionError(
                f"{folder}: a real-time detection needs detect.py with detect(record)"
            )
        if not spec.get("tables"):
            raise DetectionError(f"{yml}: tables: name the tables the detection runs on")
    elif not spec.get("schedule"):
        raise DetectionError(
            f"{yml}: schedule: a query detection needs a cron schedule, e.g. '*/5 * * * *'"
        )
    return Detection(
        id=spec["id"],
        name=spec["name"],
        severity=spec["severity"],
        tables=tuple(spec.get("tables") or ()),
        path=folder,
        module=module,
        description=spec.get("description", ""),
        enabled=spec.get("enabled", True),
        threshold=spec.get("threshold", 1),
        window_minutes=spec.get("deduplication_window_minutes", 60),
        destinations=tuple(spec.get("destinations") or ()),
        tags=tuple(spec.get("tags") or ()),
        runbook=spec.get("runbook", ""),
        reference=spec.get("reference", ""),
        query=spec.get("query"),
        schedule=spec.get("schedule"),
        tests=tuple(spec.get("tests") or ()),
    )


def detection_dirs(config_dir: str | None) -> list[Path]:
    dirs = [shipped("detections")]
    if config_dir:
        dirs.append(Path(config_dir) / "detections")
    return dirs


def load_all(dirs: Iterable[Path]) -> list[Detection]:
    """Every detection under `dirs`; a later folder's detection replaces an earlier one's id."""
    found: dict[str, Detection] = {}
    for root in dirs:
        if not root.is_dir():
            continue
        for yml in sorted(root.rglob("detection.yml")):
            det = load_detection(yml.parent)
            found[det.id] = det
    return list(found.values())


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class BatchResult:
    matches: dict[str, list[dict[str, Any]]]
    errors: Counter[str]
    records: int


class Detector:
    """Runs the enabled real-time detections of a table on each record, isolating failures."""

    def __init__(self, detections: Iterable[Detection]) -> None:
        self.by_table: dict[str, list[Detection]] = {}
        for det in detections:
            if det.enabled and det.query is None:
                for table in det.tables:
                    self.by_table.setdefault(table, []).append(det)

    def run(self, table: str, rows: Iterable[Mapping[str, Any]]) -> BatchResult:
        dets = self.by_table.get(table, [])
        result = BatchResult({}, Counter(), 0)
        for position, row in enumerate(rows):
            result.records += 1
            if not dets:
                continue
            record = Record(row)
            for det in dets:
                try:
                    if not det.detect(record):
                        continue
                    info = det.describe(record)
                except Exception as exc:  # one broken detection must not stop the others
                    result.errors[det.id] += 1
                    if result.errors[det.id] <= 3:
                        log.warning(
                            "detection %s raised on %s row %d: %s: %s",
                            det.id,
                            table,
                            position,
                            type(exc).__name__,
                            exc,
                        )
                    continue
                ts = record.get("ts")
                result.matches.setdefault(det.id, []).append(
                    {
                        "position": position,
                        "ts": ts.isoformat() if isinstance(ts, datetime) else str(ts),
                        "table": table,
                        "event_id": record.deepget("event.id"),
                        "ingest_id": record.deepget("tarn.ingest_id"),
                        **to_jsonable(info),
                    }
                )
        return result


_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _test_ts(value: Any, now: datetime) -> Any:
    if isinstance(value, str) and (m := _RELATIVE.match(value.strip())):
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    if isinstance(value, str):
        ts = datetime.fromisoformat(value)
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return value


def _table_schemas() -> dict[str, Any]:
    from tarn import logsources

    schemas: dict[str, Any] = {}
    for source in logsources.load_all()[0].values():
        schemas.update(source.tables)
    return schemas


def run_query_test(det: Detection, test: Mapping[str, Any]) -> int:
    """Run a scheduled detection's query on DuckDB over the test's rows; the number of result rows."""
    import pyarrow as pa

    from tarn.query import run_duckdb_tables

    assert det.query is not None
    now = datetime.now(UTC)
    schemas = _table_schemas()

    def load(name: str) -> pa.Table:
        rows = [dict(r) for r in test["tables"].get(name, [])]
        for row in rows:
            if "ts" in row:
                row["ts"] = _test_ts(row["ts"], now)
        if name not in schemas:
            raise DetectionError(
                f"{det.path}: test {test['name']!r} reads table {name!r}, which no log source declares"
            )
        return pa.Table.from_pylist(rows, schema=schemas[name])

    return len(run_duckdb_tables(det.query, load).rows)


def run_inline_tests(det: Detection) -> list[tuple[str, bool, str]]:
    """(test name, passed, detail) for each inline test of a detection."""
    out = []
    for test in det.tests:
        if "tables" in test:
            try:
                got_rows = run_query_test(det, test)
                ok = got_rows == test["expect"]
                detail = "" if ok else f"expected {test['expect']} result rows, got {got_rows}"
            except Exception as exc:
                ok, detail = False, f"raised {type(exc).__name__}: {exc}"
            out.append((test["name"], ok, detail))
            continue
        try:
            got = det.detect(Record(json.loads(json.dumps(test["record"]))))
            ok = got == test["expect"]
            detail = "" if ok else f"expected {test['expect']}, got {got}"
        except Exception as exc:
            ok, detail = False, f"raised {type(exc).__name__}: {exc}"
        out.append((test["name"], ok, detail))
    return out
