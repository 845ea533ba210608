"""Goldens: each log source's sample raw logs and the rows they must normalize to.

    <source>/samples/<file>                      a raw log file (any name, any compression)
    <source>/golden/<file>.json                  its rows, in input order
    <source>/golden/<file>.sidelined.json        its sidelined records (only if there are any)

A row is `table.to_pylist()` of its table with times as ISO 8601 text, the table's name under
`_table`, and without `event.original` and `tarn.ingest_id`. Goldens are rendered as if now
were GOLDEN_NOW, so that years inferred for RFC 3164 syslog do not move with the calendar.

A sample fails when its rows differ from the golden, when records are sidelined that the
golden does not list, or when the transform emits non-null fields its table does not declare
(they would be dropped silently).

    python -m tarn.logsources.golden [NAME...]            check (all sources without NAME)
    python -m tarn.logsources.golden --write NAME...      (re)write the goldens of NAME
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from tarn.logsources import LogSource, get, load_all
from tarn.logsources.helpers import reference_time
from tarn.normalize import Row, Sidelined, normalize, rows

GOLDEN_NOW = datetime(2026, 12, 31, 12, 0, 0, tzinfo=UTC)
INGEST_ID = "golden"


@dataclass(frozen=True)
class GoldenResult:
    sample: str
    ok: bool
    detail: str
    rows: int = 0
    sidelined: int = 0


@dataclass
class Rendered:
    rows: list[dict[str, Any]]
    sidelined: list[dict[str, Any]]
    undeclared: dict[str, set[str]]  # table -> dotted fields emitted but not declared


def samples(source: LogSource) -> list[Path]:
    folder = source.path / "samples"
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.upper().startswith("README")
    )


def golden_path(source: LogSource, sample: Path) -> Path:
    return source.path / "golden" / f"{sample.name}.json"


def sidelined_path(source: LogSource, sample: Path) -> Path:
    return source.path / "golden" / f"{sample.name}.sidelined.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _golden_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    row = _jsonable(row)
    event = row.get("event")
    if isinstance(event, dict):
        event.pop("original", None)
    tarn = row.get("tarn")
    if isinstance(tarn, dict):
        tarn.pop("ingest_id", None)
    return {"_table": table, **row}


def _undeclared(
    row: dict[str, Any], columns: dict[str, pa.DataType], prefix: str = ""
) -> Iterator[str]:
    for key, value in row.items():
        path = f"{prefix}{key}"
        if path in columns:
            continue
        if isinstance(value, dict):
            yield from _undeclared(value, columns, f"{path}.")
        elif value is not None and value != [] and value != "":
            yield path


def _resolve(source: LogSource | str) -> LogSource:
    return get(source) if isinstance(source, str) else source


def render_sample(source: LogSource | str, sample_path: Path | str) -> Rendered:
    """Normalize one sample: its golden rows in input order, its sidelined records, and the
    fields the transform emitted that its tables do not declare."""
    src = _resolve(source)
    out = Rendered([], [], {})
    with reference_time(GOLDEN_NOW), Path(sample_path).open("rb") as f:
        for item in rows(f, src, INGEST_ID):
            if isinstance(item, Sidelined):
                out.sidelined.append(
                    {"position": item.position, "stage": item.stage, "reason": item.reason}
                )
                continue
            assert isinstance(item, Row)
            spec = src.table_specs[item.table]
            extra = set(_undeclared(item.row, spec.columns))
            if extra:
                out.undeclared.setdefault(item.table, set()).update(extra)
            try:
                typed = pa.Table.from_pylist([item.row], schema=spec.schema).to_pylist()[0]
            except (
                pa.ArrowInvalid,
                pa.ArrowTypeError,
                TypeError,
                ValueError,
                OverflowError,
            ) as exc:
                out.sidelined.append(
                    {
                        "position": item.position,
                        "stage": "validate",
                        "reason": f"does not fit the schema of {item.table}: {exc}",
                    }
                )
                continue
            out.rows.append(_golden_row(item.table, typed))
    return out


def render(source: LogSource | str, sample_path: Path | str) -> list[dict[str, Any]]:
    """The golden rows of one sample (what `--write` stores in golden/<sample>.json)."""
    return render_sample(source, sample_path).rows


def _dump(items: list[Any]) -> str:
    """A JSON list with one item per line: small files whose diffs show the changed rows."""
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n]\n"


def write(source: LogSource | str) -> list[Path]:
    """(Re)write the goldens of every sample of `source`; returns the files written."""
    src = _resolve(source)
    written = []
    for sample in samples(src):
        rendered = render_sample(src, sample)
        path = golden_path(src, sample)
        path.parent.mkdir(exist_ok=True)
        path.write_text(_dump(rendered.rows), encoding="utf-8")
        written.append(path)
        side = sidelined_path(src, sample)
        if rendered.sidelined:
            side.write_text(_dump(rendered.sidelined), encoding="utf-8")
            written.append(side)
        elif side.exists():
            side.unlink()
    return written


def _first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual:
                return f"{path}{key}: missing (golden has {expected[key]!r})"
            if key not in expected:
                return f"{path}{key}: not in the golden (got {actual[key]!r})"
            diff = _first_difference(expected[key], actual[key], f"{path}{key}.")
            if diff:
                return diff
        return None
    if expected != actual:
        return f"{path.rstrip('.')}: golden {expected!r}, got {actual!r}"
    return None


def _rows_difference(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], what: str
) -> str | None:
    if expected == actual:
        return None
    if len(expected) != len(actual):
        return f"{len(actual)} rows, {what} has {len(expected)}"
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        diff = _first_difference(want, got)
        if diff:
            return f"row {i}: {diff}"[:500]
    return None


def check(source: LogSource | str, sample: Path) -> GoldenResult:
    src = _resolve(source)
    try:
        rendered = render_sample(src, sample)
    except Exception as exc:  # an exception escaping normalize is itself the failure to report
        return GoldenResult(sample.name, False, f"normalize raised {type(exc).__name__}: {exc}")
    actual = json.loads(json.dumps(rendered.rows))
    n_rows, n_side = len(actual), len(rendered.sidelined)

    def fail(detail: str) -> GoldenResult:
        return GoldenResult(sample.name, False, detail, n_rows, n_side)

    if rendered.undeclared:
        listed = "; ".join(
            f"{t}: {', '.join(sorted(f))}" for t, f in sorted(rendered.undeclared.items())
        )
        return fail(
            f"the transform emits fields its table does not declare ({listed}); add them to the schema"
        )
    path = golden_path(src, sample)
    if not path.exists():
        return fail(
            f"no golden; write it with `python -m tarn.logsources.golden --write {src.name}`"
        )
    expected = json.loads(path.read_text(encoding="utf-8"))
    diff = _rows_difference(expected, actual, "the golden")
    if diff:
        return fail(diff)
    side_path = sidelined_path(src, sample)
    expected_side = json.loads(side_path.read_text(encoding="utf-8")) if side_path.exists() else []
    actual_side = json.loads(json.dumps(rendered.sidelined))
    if expected_side != actual_side:
        first = actual_side[0] if actual_side else None
        return fail(
            f"{len(actual_side)} sidelined, the golden lists {len(expected_side)}"
            + (
                f" (first: {first['stage']} at {first['position']}: {first['reason'][:200]})"
                if first
                else ""
            )
        )
    # normalize() (batched Arrow, and the source's batch transform if it has one) must give
    # exactly the rows and sideline entries of the record-by-record rendering above
    with reference_time(GOLDEN_NOW), sample.open("rb") as f:
        chunks = list(normalize(f, src, INGEST_ID, batch_records=1000, columnar="strict"))
    good, side = sum(c.rows for c in chunks), sum(c.sideline.num_rows for c in chunks)
    if (good, side) != (n_rows, n_side):
        return fail(
            f"normalize() gave {good} rows and {side} sidelined, row by row gave {n_rows} and {n_side}"
        )
    by_table: dict[str, list[dict[str, Any]]] = {}
    for row in actual:
        by_table.setdefault(row["_table"], []).append(row)
    batched: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks:
        for table, rows_ in chunk.tables.items():
            batched.setdefault(table, []).extend(_golden_row(table, r) for r in rows_.to_pylist())
    batched = json.loads(json.dumps(batched))
    for table in sorted(set(by_table) | set(batched)):
        diff = _rows_difference(by_table.get(table, []), batched.get(table, []), "row by row")
        if diff:
            return fail(f"normalize(), table {table}: {diff}")
    batched_side = sorted(
        (r["position"], r["stage"], r["reason"]) for c in chunks for r in c.sideline.to_pylist()
    )
    if batched_side != sorted((r["position"], r["stage"], r["reason"]) for r in actual_side):
        return fail("normalize() sidelines other records (or reasons) than row by row")
    return GoldenResult(sample.name, True, "", n_rows, n_side)


def run(source: LogSource | str) -> list[GoldenResult]:
    """Check every sample of `source` against its golden."""
    src = _resolve(source)
    found = samples(src)
    if not found:
        return [GoldenResult("-", False, f"no samples in {src.path / 'samples'}")]
    return [check(src, sample) for sample in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tarn.logsources.golden", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="*", help="log sources (all when none is named)")
    parser.add_argument(
        "--write", action="store_true", help="(re)write the goldens instead of checking"
    )
    args = parser.parse_args(argv)
    from tarn import config

    config_dir = config.get().config_dir
    if args.write:
        if not args.names:
            parser.error("--write needs the names of the log sources to rewrite")
        for name in args.names:
            for path in write(get(name, config_dir)):
                print(f"wrote {path}")
        return 0
    ok_sources, failed = load_all(config_dir)
    names = args.names or sorted({*ok_sources, *failed})
    bad = 0
    for name in names:
        if name in failed:
            print(f"{name}: does not load: {failed[name]}")
            bad += 1
            continue
        for r in run(ok_sources.get(name) or get(name, config_dir)):
            bad += not r.ok
            print(
                f"{name} {r.sample}: {'ok' if r.ok else 'FAIL'} rows={r.rows} sidelined={r.sidelined} {r.detail}"
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
