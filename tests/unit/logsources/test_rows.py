"""normalize() per row: table routing, required ts, coercions, related.*, event.original."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from tarn import logsources
from tarn.normalize import normalize
from tests.unit.logsources.test_loading import make

ZEEK_YML = """name: net
ingest: {format: zeek}
table_by: {field: _path, map: {conn: conn, dns: dns}}
"""
ZEEK_TABLES = {
    "conn": "schema: {ecs: [source.ip, destination.ip, network.transport], fields: [{name: zeek.uid, type: keyword}]}\n",
    "dns": "schema: {ecs: [dns.question.name, source.ip, dns.answers]}\n",
    "weird": "schema: {ecs: [message]}\n",
}
ZEEK_TRANSFORM = """
def transform(r):
    if r.get("uid") == "split":
        return [{"ts": r["ts"], "message": "one", "_table": "weird"}, {"ts": r["ts"], "message": "two", "_table": "weird"}]
    if r["_path"] == "dns":
        return {"ts": r["ts"], "dns": {"question": {"name": r["query"]}, "answers": [{"data": "1.2.3.4"}]}, "source": {"ip": r["id.orig_h"]}}
    return {"ts": r["ts"], "source": {"ip": r.get("id.orig_h")}, "destination": {"ip": r.get("id.resp_h")},
            "network": {"transport": r.get("proto")}, "zeek": {"uid": r.get("uid")}}
"""


def zeek_log(path: str, fields: list[str], rows: list[list[str]]) -> bytes:
    head = f"#separator \\x09\n#path\t{path}\n#fields\t" + "\t".join(fields) + "\n"
    return (head + "".join("\t".join(r) + "\n" for r in rows)).encode()


def run(source, data: bytes, batch: int = 50_000):
    chunks = list(normalize(io.BytesIO(data), source, "ing", batch))
    tables: dict[str, list] = {}
    for c in chunks:
        for name, t in c.tables.items():
            tables.setdefault(name, []).extend(t.to_pylist())
    side = [s for c in chunks for s in c.sideline.to_pylist()]
    return tables, side


def test_table_by_routes_records_and_sidelines_unmapped_values(tmp_path: Path) -> None:
    src = logsources.load_folder(make(tmp_path, "net", ZEEK_YML, ZEEK_TRANSFORM, ZEEK_TABLES))
    data = (
        zeek_log(
            "conn",
            ["ts", "uid", "id.orig_h", "id.resp_h", "proto"],
            [["1795136523.5", "C1", "10.0.0.1", "10.0.0.2", "tcp"]],
        )
        + zeek_log(
            "dns",
            ["ts", "uid", "id.orig_h", "query"],
            [["1795136524", "C2", "10.0.0.3", "example.org"]],
        )
        + zeek_log("x509", ["ts", "uid"], [["1795136525", "C3"]])
        + zeek_log("conn", ["ts", "uid"], [["1795136526", "split"]])
    )
    tables, side = run(src, data)
    assert set(tables) == {"net_conn", "net_dns", "net_weird"}
    conn = tables["net_conn"][0]
    assert conn["ts"].isoformat() == "2026-11-20T01:02:03.500000+00:00"
    assert conn["zeek"]["uid"] == "C1" and conn["tarn"]["table"] == "net_conn"
    assert conn["related"]["ip"] == ["10.0.0.1", "10.0.0.2"]
    dns = tables["net_dns"][0]
    assert dns["dns"]["answers"] == '[{"data":"1.2.3.4"}]'  # json columns take any value
    assert [r["message"] for r in tables["net_weird"]] == [
        "one",
        "two",
    ]  # _table wins over table_by
    (s,) = side
    assert s["stage"] == "validate" and "_path='x509' is not in table_by.map" in s["reason"]
    assert s["raw"].startswith("1795136525")


def test_transform_choosing_an_undeclared_table_is_sidelined(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n",
             "def transform(r):\n    return {'ts': r['t'], '_table': r['table']}\n")
    )  # fmt: skip
    tables, side = run(src, b'{"t": 1, "table": "nope"}\n{"t": 2, "table": "app"}\n')
    assert len(tables["app"]) == 1
    assert "chose table 'nope'" in side[0]["reason"]


def test_timestamp_date_and_json_columns_are_coerced(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(
            tmp_path,
            "app",
            "name: app\ningest: {format: ndjson}\nschema:\n  ecs: [event.created, event.end]\n"
            "  fields: [{name: app.day, type: date}, {name: app.extra, type: json}]\n",
        )
    )
    data = b'{"ts": "2026-11-20T01:02:03+02:00", "event": {"created": 1795136523000, "end": "2026-11-20 01:02:04"}, "app": {"day": "2026-11-19", "extra": {"b": 1, "a": [1]}}}\n'
    tables, side = run(src, data)
    assert not side
    row = tables["app"][0]
    assert row["ts"].isoformat() == "2026-11-19T23:02:03+00:00"
    assert row["event"]["created"].isoformat() == "2026-11-20T01:02:03+00:00"
    assert row["event"]["end"].isoformat() == "2026-11-20T01:02:04+00:00"
    assert row["app"] == {"day": date(2026, 11, 19), "extra": '{"a":[1],"b":1}'}
    _, side = run(src, b'{"ts": 1, "event": {"created": "soon"}}\n')
    assert side[0]["stage"] == "validate" and side[0]["reason"].startswith("event.created:")


def test_ts_is_required(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n")
    )
    tables, side = run(src, b'{"message": "no time"}\n{"ts": 1795136523, "message": "ok"}\n')
    assert [r["message"] for r in tables["app"]] == ["ok"]
    assert side[0]["reason"].startswith("bad ts None")


def test_related_is_filled_from_ecs_fields_after_the_transforms_own(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(
            tmp_path,
            "app",
            "name: app\ningest: {format: ndjson}\nschema:\n  ecs: [source.ip, host.ip, user.name, user.target.name, host.name, file.hash.sha256, tls.client.ja3]\n",
        )
    )
    data = (
        b'{"ts": 1, "related": {"ip": ["9.9.9.9"], "user": ["x", ""]}, "source": {"ip": "1.1.1.1"}, "host": {"ip": ["2.2.2.2", "1.1.1.1"], "name": "web"},'
        b' "user": {"name": "alice", "target": {"name": "bob"}}, "file": {"hash": {"sha256": "abc"}}, "tls": {"client": {"ja3": "j"}}}\n'
    )
    tables, side = run(src, data)
    assert not side
    related = tables["app"][0]["related"]
    assert related == {
        "ip": ["9.9.9.9", "1.1.1.1", "2.2.2.2"],
        "user": ["x", "alice", "bob"],
        "hosts": ["web"],
        "hash": ["abc", "j"],
    }


def test_event_original_kept_only_where_configured(tmp_path: Path) -> None:
    kept = logsources.load_folder(
        make(
            tmp_path,
            "a",
            "name: a\ningest: {format: kv}\nschema: {ecs: [message]}\n",
            "def transform(r):\n    return {'ts': r['t']}\n",
        )
    )
    dropped = logsources.load_folder(
        make(
            tmp_path,
            "b",
            "name: b\ningest: {format: kv, keep_original: false}\nschema: {ecs: [message]}\n",
            "def transform(r):\n    return {'ts': r['t']}\n",
        )
    )
    line = b"t=1795136523 user=alice\n"
    assert run(kept, line)[0]["a"][0]["event"]["original"] == "t=1795136523 user=alice"
    assert run(dropped, line)[0]["b"][0]["event"] is None


def test_transform_results(tmp_path: Path) -> None:
    code = """
def transform(r):
    kind = r["k"]
    if kind == "none":
        return None
    if kind == "many":
        return [{"ts": 1, "message": str(i)} for i in range(3)]
    if kind == "str":
        return "oops"
    if kind == "bad-event":
        return {"ts": 1, "event": "x"}
    if kind == "raise":
        raise KeyError("missing")
    return {"ts": 1, "message": kind}
"""
    src = logsources.load_folder(
        make(
            tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n", code
        )
    )
    data = b"\n".join(
        f'{{"k": "{k}"}}'.encode() for k in ("none", "many", "str", "bad-event", "raise", "one")
    )
    tables, side = run(src, data)
    assert [r["message"] for r in tables["app"]] == ["0", "1", "2", "one"]
    assert [(s["stage"], s["position"]) for s in side] == [
        ("validate", 2),
        ("validate", 3),
        ("transform", 4),
    ]
    assert "returned str" in side[0]["reason"] and "`event` must be a mapping" in side[1]["reason"]
    assert side[2]["reason"] == "KeyError: 'missing'"


def test_chunks_count_sidelined_records_too(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n")
    )
    data = b"".join(b"bad\n" if i % 2 else b'{"ts": 1}\n' for i in range(30))
    chunks = list(normalize(io.BytesIO(data), src, "i", 10))
    assert [c.rows + c.sideline.num_rows for c in chunks] == [10, 10, 10, 0]
    assert sum(c.rows for c in chunks) == 15 and chunks[-1].final


def test_large_tables_are_built_from_sub_batches_and_write_one_row_group(tmp_path: Path) -> None:
    src = logsources.load_folder(
        make(tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n")
    )
    data = b"".join(b'{"ts": %d, "message": "m%d"}\n' % (i, i) for i in range(10_000))
    (chunk,) = list(normalize(io.BytesIO(data), src, "i"))
    table = chunk.tables["app"]
    assert table.num_rows == 10_000 and table.column("message").to_pylist()[-1] == "m9999"
    buf = io.BytesIO()
    pq.write_table(table, buf)
    assert pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata.num_row_groups == 1


def test_chunks_are_cut_by_size_too(tmp_path: Path, monkeypatch) -> None:
    from tarn import normalize as n

    monkeypatch.setattr(n, "SUB_BATCH", 100)
    monkeypatch.setattr(n, "MAX_CHUNK_BYTES", 200_000)
    src = logsources.load_folder(
        make(tmp_path, "app", "name: app\ningest: {format: ndjson}\nschema: {ecs: [message]}\n")
    )
    data = b"".join(b'{"ts": 1, "message": "%s"}\n' % (b"x" * 1000) for _ in range(1000))
    chunks = list(normalize(io.BytesIO(data), src, "i", 50_000))
    assert len(chunks) > 3 and sum(c.rows for c in chunks) == 1000
    assert all(c.tables["app"].nbytes < 400_000 for c in chunks if c.rows)
