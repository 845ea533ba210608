"""Bad input, property-based: truncated lines, binary garbage, JSON of the wrong shape, wrong
timestamps, huge fields and deep nesting, over every ingest format.

For every input: no exception escapes normalize(); every sidelined record has a stage and a
reason; no reason is a parser bug; and, for line formats, every line is accounted for (a row
or a sideline entry) and the good lines beside bad ones land.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarn import logsources
from tarn.normalize import normalize

FORMATS = ["json", "ndjson", "csv", "tsv", "zeek", "zeek_json", "syslog", "syslog5424", "kv", "cef"]
LINE_FORMATS = ["ndjson", "zeek_json", "syslog", "syslog5424", "kv", "cef"]  # one record per line
STAGES = {"parse", "transform", "validate"}
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRANSFORM = """
from tarn.logsources.helpers import syslog_ts


def transform(r):
    if not isinstance(r, dict):
        raise ValueError(f"expected an object, got {type(r).__name__}")
    if r.get("format") in ("rfc3164", "rfc5424"):
        ts, message, src = syslog_ts(r["timestamp"], 2026), r["message"], r["hostname"]
    elif "extensions" in r:
        ts, message, src = r["extensions"].get("rt"), r["name"], r["extensions"].get("src")
    else:
        ts, message, src = r.get("ts"), r.get("msg"), r.get("src")
    return {"ts": ts, "message": message, "source": {"address": src}, "labels": r}
"""
# A twin of the json and ndjson sources with a batch transform: normalize() must give the same
# result through it as record by record, whatever the input.
BATCH_TRANSFORM = """
from tarn.logsources import columnar as col
from tarn.logsources.helpers import json_text


def transform(r):
    if not isinstance(r, dict):
        raise ValueError(f"expected an object, got {type(r).__name__}")
    return {"ts": r.get("ts"), "message": r.get("msg"), "source": {"address": r.get("src")},
            "labels": json_text(r.get("extra"))}


@col.columnar(raw={"ts": "string", "msg": "string", "src": "string", "extra": "json"})
def transform_columns(batch):
    return {"ts": col.timestamps(batch["ts"]), "message": batch["msg"],
            "source.address": batch["src"], "labels": batch.json("extra")}
"""
SYSLOG_BATCH_TRANSFORM = """
import pyarrow as pa
from tarn.logsources import columnar as col
from tarn.logsources.helpers import json_text, syslog_ts


def _ts(text):
    return syslog_ts(text, 2026)


def transform(r):
    return {"ts": _ts(r["timestamp"]), "message": f"{r['appname']}|{r['procid']}|{r['message']}",
            "source": {"address": r["hostname"]},
            "labels": json_text([r["facility"], r["severity"], r["msgid"], r["structured_data"]])}


@col.columnar(raw={"timestamp": "string", "message": "string", "hostname": "string",
                   "appname": "string", "procid": "string", "msgid": "string",
                   "facility": "long", "severity": "long", "structured_data": "json"})
def transform_columns(batch):
    labels = [json_text([f, s, m, sd]) for f, s, m, sd in zip(
        batch.values("facility"), batch.values("severity"), batch.values("msgid"),
        batch.values("structured_data"))]
    parts = [f"{a}|{p}|{m}" for a, p, m in zip(
        batch.values("appname"), batch.values("procid"), batch.values("message"))]
    return {"ts": col.timestamps(batch["timestamp"], _ts), "message": pa.array(parts),
            "source.address": batch["hostname"], "labels": pa.array(labels, pa.string())}
"""
# The zeek twin reads its fields from the rest of the record ("*"): Zeek TSV lines are then
# read column by column (ZeekLayout.columns), not a dict per line.
ZEEK_BATCH_TRANSFORM = """
import pyarrow as pa
from tarn.logsources import columnar as col
from tarn.logsources.helpers import json_text


def _text(value):
    return value if value is None or isinstance(value, str) else json_text(value)


def transform(r):
    if not isinstance(r, dict):
        raise ValueError(f"expected an object, got {type(r).__name__}")
    rest = {k: v for k, v in r.items() if k != "_path"}
    return {"ts": _text(r.get("ts")), "message": _text(r.get("msg")),
            "source": {"address": _text(r.get("src"))}, "labels": json_text(rest)}


@col.columnar(raw={"_path": "string", "*": "json"})
def transform_columns(batch):
    got = batch.fields(["ts", "msg", "src"])
    text = {k: pa.array([_text(v) for v in values], pa.string()) for k, values in got.items()}
    return {"ts": col.timestamps(text["ts"]), "message": text["msg"],
            "source.address": text["src"], "labels": col.json_texts(batch.values("*"))}
"""
INGEST = {
    "json": "{format: json, records_path: Records}",
    "ndjson": "{format: ndjson}",
    "csv": "{format: csv}",
    "tsv": "{format: tsv}",
    "zeek": "{format: zeek, table: t}",
    "zeek_json": "{format: zeek, table: t}",
    "syslog": "{format: syslog}",
    "syslog5424": "{format: syslog}",
    "kv": "{format: kv}",
    "cef": "{format: cef}",
}


BATCH_TWINS: dict[str, logsources.LogSource] = {}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, logsources.LogSource]:
    root = tmp_path_factory.mktemp("fuzz")
    out = {}
    for fmt, ingest in INGEST.items():
        name = f"fuzz_{fmt}"
        folder = root / name
        folder.mkdir()
        (folder / "log_source.yml").write_text(
            f"name: {name}\ningest: {ingest}\nschema: {{ecs: [message, source.address, labels]}}\n"
        )
        (folder / "transform.py").write_text(TRANSFORM)
        out[fmt] = logsources.load_folder(Path(folder))
        if fmt in ("json", "ndjson", "csv", "tsv", "syslog", "syslog5424", "zeek", "zeek_json"):
            twin = root / f"{name}_batch"
            twin.mkdir()
            (twin / "log_source.yml").write_text(
                f"name: {name}_batch\ningest: {ingest}\n"
                "schema: {ecs: [message, source.address, labels]}\n"
            )
            (twin / "transform.py").write_text(
                SYSLOG_BATCH_TRANSFORM
                if fmt.startswith("syslog")
                else ZEEK_BATCH_TRANSFORM
                if fmt.startswith("zeek")
                else BATCH_TRANSFORM
            )
            BATCH_TWINS[name] = logsources.load_folder(Path(twin))
            assert BATCH_TWINS[name].columnar is not None
    return out


def lines_of(fmt: str, rows: list[tuple[str, str, str]]) -> list[str]:
    """Text lines of a valid file of `fmt` holding (ts, msg, src) rows (header lines included)."""
    if fmt in ("ndjson", "zeek_json"):
        return [json.dumps({"ts": t, "msg": m, "src": s}) for t, m, s in rows]
    if fmt == "json":
        body = ",\n".join(json.dumps({"ts": t, "msg": m, "src": s}) for t, m, s in rows)
        return ['{"Records": [', *body.split("\n"), "]}"]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([("ts", "msg", "src"), *rows])
        return buf.getvalue().splitlines()
    if fmt == "tsv":
        return ["ts\tmsg\tsrc", *("\t".join(r) for r in rows)]
    if fmt == "zeek":
        head = [
            "#separator \\x09",
            "#path\tt",
            "#fields\tts\tmsg\tsrc",
            "#types\ttime\tstring\tstring",
        ]
        return head + ["\t".join(r) for r in rows]
    if fmt == "syslog":
        return [
            f"<34>Nov 20 01:02:0{i % 10} {s or 'h'} app[1]: {m}" for i, (_, m, s) in enumerate(rows)
        ]
    if fmt == "syslog5424":
        return [
            f"<34>1 2026-11-20T01:02:0{i % 10}Z {s or 'h'} app 1 - - {m}"
            for i, (_, m, s) in enumerate(rows)
        ]
    if fmt == "kv":
        return [f'ts={t} msg="{m}" src={s}' for t, m, s in rows]
    if fmt == "cef":
        return [f"CEF:0|V|P|1|100|{m}|5|rt={t} src={s}" for t, m, s in rows]
    raise AssertionError(fmt)


GOOD = [(f"2026-11-20T01:02:0{i}Z", f"good {i}", f"10.0.0.{i}") for i in range(5)]


def _outcome(source: logsources.LogSource, data: bytes, mode: str) -> tuple[list, list]:
    chunks = list(normalize(io.BytesIO(data), source, "fuzz", 50, columnar=mode))
    rows = [r for c in chunks for t in c.tables.values() for r in t.to_pylist()]
    side = sorted(
        (s["position"], s["stage"], s["reason"], s["raw"])
        for c in chunks
        for s in c.sideline.to_pylist()
    )
    return rows, side


def run(source: logsources.LogSource, data: bytes) -> tuple[list[dict], list[dict]]:
    twin = BATCH_TWINS.get(source.name)
    if twin is not None:
        assert _outcome(twin, data, "strict") == _outcome(twin, data, "off")
    chunks = list(normalize(io.BytesIO(data), source, "fuzz", 50))  # small chunks: cut often
    assert chunks[-1].final and not any(c.final for c in chunks[:-1])
    rows = [r for c in chunks for t in c.tables.values() for r in t.to_pylist()]
    side = [s for c in chunks for s in c.sideline.to_pylist()]
    for s in side:
        assert s["stage"] in STAGES, s
        assert s["reason"], s
        assert "parser failed" not in s["reason"] and "in the parser" not in s["reason"], s[
            "reason"
        ]
        assert s["tarn"]["log_source"] == source.name
    for r in rows:
        assert r["ts"] is not None and r["tarn"]["log_source"] == source.name
    return rows, side


def data_lines(text: str, fmt: str) -> int:
    text = text.removeprefix("\ufeff")  # a byte order mark is not a line's content
    return sum(
        1
        for line in text.split("\n")
        if line.strip() and not (fmt == "zeek" and line.startswith("#"))
    )


printable = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\|=\t,'), max_size=40
)


def _line_garbage(b: bytes) -> bool:
    """One line of garbage (no line break, no quote to open a CSV field, no compression magic)."""
    return b"\n" not in b and b'"' not in b and not b.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd"))


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(garbage=st.binary(max_size=3000))
def test_binary_garbage(sources, fmt: str, garbage: bytes) -> None:
    run(sources[fmt], garbage)
    run(sources[fmt], gzip.compress(garbage))


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(
    garbage=st.lists(st.binary(max_size=200).filter(_line_garbage), max_size=5),
    where=st.integers(0, 5),
)
def test_good_lines_beside_garbage_lines_land(
    sources, fmt: str, garbage: list[bytes], where: int
) -> None:
    lines = [line.encode() for line in lines_of(fmt, GOOD)]
    header = 0 if fmt not in ("csv", "tsv", "zeek") else (1 if fmt != "zeek" else 4)
    if fmt == "json":  # a document: garbage lines go before or after it
        body = b"\n".join(lines)
        data = b"\n".join(garbage[: where % (len(garbage) + 1)]) + b"\n" + body
        rows, _ = run(sources[fmt], data)
        return
    at = header + where % (len(lines) - header + 1)
    if fmt == "zeek_json":
        at = max(at, 1)  # the first line tells Zeek JSON from Zeek TSV
    data = b"\n".join(lines[:at] + garbage + lines[at:]) + b"\n"
    rows, side = run(sources[fmt], data)
    assert sorted(r["message"] for r in rows if r["message"] and r["message"].startswith("good"))[
        :5
    ] == [m for _, m, _ in GOOD]
    if fmt in LINE_FORMATS:
        text = data.decode("utf-8", "replace")
        assert len(rows) + len(side) == data_lines(text, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(data=st.data())
def test_truncated_input(sources, fmt: str, data: st.DataObject) -> None:
    full = "\n".join(lines_of(fmt, GOOD)).encode() + b"\n"
    cut = data.draw(st.integers(0, len(full)))
    head = full[:cut]
    rows, side = run(sources[fmt], head)
    text = head.decode("utf-8", "replace")
    complete = (
        text.count("\n") - (0 if fmt not in ("csv", "tsv") else 1) - (4 if fmt == "zeek" else 0)
    )
    if fmt in LINE_FORMATS:
        assert len(rows) + len(side) == data_lines(text, fmt)
    if fmt != "json":
        assert len(rows) >= max(0, complete)
    else:
        assert len(side) <= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("fmt", ["json", "ndjson", "zeek_json"])
@SETTINGS
@given(value=json_values)
def test_valid_json_of_the_wrong_shape(sources, fmt: str, value) -> None:
    line = json.dumps(value)
    rows, side = run(sources[fmt], line.encode() + b"\n")
    run(sources[fmt], json.dumps({"Records": [value, value]}).encode())
    if fmt == "ndjson":
        assert len(rows) + len(side) == 1


timestamps = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "2026-02-30T00:00:00Z",
            "2026-11-20T25:00:00Z",
            "0000-01-01",
            "9999-12-31T23:59:59+14:00",
            "1e400",
            "-1",
        ]
    ),
)


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "kv", "cef", "zeek_json"])
@SETTINGS
@given(ts=timestamps)
def test_wrong_timestamps(sources, fmt: str, ts) -> None:
    text = ts if isinstance(ts, str) else json.dumps(ts)
    if fmt in ("json", "ndjson", "zeek_json"):
        data = (json.dumps({"ts": ts, "msg": "m"}) + "\n").encode()
    elif fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows([("ts", "msg"), (text, "m")])
        data = buf.getvalue().encode()
    elif fmt == "kv":
        data = f'ts="{text}" msg=m\n'.replace("\n", " ").encode() + b"\n"
    else:
        data = f"CEF:0|V|P|1|1|m|1|rt={text} src=x".replace("\n", " ").encode()
    rows, side = run(sources[fmt], data)
    assert len(rows) + len(side) == 1
    for s in side:
        assert s["stage"] in ("parse", "validate")


@pytest.mark.parametrize("fmt", ["syslog", "syslog5424"])
@SETTINGS
@given(
    stamp=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30
    )
)
def test_wrong_syslog_timestamps(sources, fmt: str, stamp: str) -> None:
    line = (
        f"<34>{stamp} host app: m" if fmt == "syslog" else f"<34>1 {stamp or '-'} host app 1 - - m"
    )
    rows, side = run(sources[fmt], line.encode() + b"\n")
    assert len(rows) + len(side) == (1 if line.strip() else 0)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=8, deadline=None)
@given(size=st.integers(10_000, 3_000_000))
def test_huge_fields(sources, fmt: str, size: int) -> None:
    big = "x" * size
    rows, side = run(
        sources[fmt],
        ("\n".join(lines_of(fmt, [("2026-11-20T01:02:03Z", big, "10.0.0.1")])) + "\n").encode(),
    )
    assert not side and len(rows) == 1
    assert rows[0]["message"] == big


@pytest.mark.parametrize("fmt", ["json", "ndjson", "zeek_json", "kv", "syslog5424"])
@settings(max_examples=20, deadline=None)
@given(depth=st.integers(1, 100_000), kind=st.sampled_from(["[", '{"a":']))
def test_deep_nesting(sources, fmt: str, depth: int, kind: str) -> None:
    closer = "]" if kind == "[" else "}"
    deep = kind * depth + "1" + closer * depth
    if fmt in ("json", "ndjson", "zeek_json"):
        payloads = [
            f'{{"ts": 1, "msg": "m", "deep": {deep}}}',
            f'{{"Records": [{deep}, {{"ts": 2, "msg": "m"}}]}}',
        ]
    elif fmt == "kv":
        payloads = [f'ts=1 msg="{deep}"']
    else:
        sd = "".join(f'[id{i} a="{"]" * 3}"]' for i in range(min(depth, 2000)))
        payloads = [f"<34>1 2026-11-20T01:02:03Z h a 1 - {sd} m"]
    for payload in payloads:
        run(sources[fmt], payload.encode() + b"\n")


@SETTINGS
@given(
    records=st.lists(json_values, max_size=8),
    read_size=st.integers(1, 64),
    pretty=st.booleans(),
    extra=st.dictionaries(
        st.text(max_size=5).filter(lambda k: k != "Records"), json_values, max_size=3
    ),
)
def test_streamed_json_documents_read_like_json_loads(
    records, read_size: int, pretty: bool, extra
) -> None:
    """Whatever the read size, the incremental reader yields exactly the records and raw
    slices that json.loads sees."""
    from unittest import mock

    from tarn.logsources import _json
    from tarn.logsources._parse import Ingest, parse

    doc = {**extra, "Records": records}
    text = json.dumps(doc, indent=2 if pretty else None, ensure_ascii=False)
    with (
        mock.patch.object(_json, "READ_SIZE", read_size),
        mock.patch.object(_json, "_SNIFF", read_size),
    ):
        out = list(parse(io.BytesIO(text.encode()), Ingest(format="json", records_path="Records")))
    assert [r for _, _, r in out] == json.loads(json.dumps(records))
    assert [json.loads(raw) for _, raw, _ in out] == json.loads(json.dumps(records))
