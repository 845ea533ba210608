"""Batch transforms (tarn.logsources.columnar): the batch path gives exactly the rows and the
sideline entries of transform(record), record by record, for any input; it only changes speed.

CloudTrail's transform_columns is checked against its transform over generated records that
mix realistic values with every kind of wrong one (types, shapes, times, addresses)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarn import logsources
from tarn.logsources import columnar as col
from tarn.logsources.exceptions import LogSourceError
from tarn.logsources.helpers import iso_ts_or_none, parse_ts, unique
from tarn.normalize import normalize
from tests.unit.logsources.test_loading import make

CLOUDTRAIL = logsources.builtin("aws_cloudtrail")
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(source, data: bytes, mode: str, batch: int = 7):
    """Rows per table in order, and sideline entries, of normalize() in one mode."""
    chunks = list(normalize(io.BytesIO(data), source, "ing", batch, columnar=mode))
    assert chunks[-1].final
    tables: dict[str, list] = {}
    for c in chunks:
        assert c.rows + c.sideline.num_rows <= batch or c.final or c.rows <= batch
        for name, t in c.tables.items():
            tables.setdefault(name, []).extend(t.to_pylist())
    side = sorted(
        (s["position"], s["stage"], s["reason"], s["raw"])
        for c in chunks
        for s in c.sideline.to_pylist()
    )
    return tables, side


def assert_same(source, data: bytes, batch: int = 7) -> tuple[dict, list]:
    rows = outcome(source, data, "off", batch)
    assert outcome(source, data, "strict", batch) == rows
    return rows


# -- CloudTrail: the batch transform against transform(), over generated records -----------------
words = st.sampled_from(
    ["", " ", "Root", "IAMUser", "AssumedRole", "ConsoleLogin", "Success", "Failure", "true",
     "false", "TRUE", " yes ", "No", "Yes", "1", "0", "alice", "bob", "AccessDenied",
     "81.2.69.142", "10.0.0.1", " 10.0.0.2 ", "::ffff:10.0.0.3", "fe80::1%eth0", "[2001:db8::1]",
     "2001:DB8::1", "s3.amazonaws.com", "iam.amazonaws.com", "sts.amazonaws.com",
     "signin.amazonaws.com", "kms.amazonaws.com", "ec2.amazonaws.com", "CreateUser", "PutObject",
     "DeleteTrail", "GetObject", "ListBuckets", "StopLogging", "AttachRolePolicy", "Describe",
     "é✓", "\u212a", "İ"]
)  # fmt: skip
text = words | st.text(max_size=12)
scalar = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | text
anything = st.recursive(
    scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
    max_leaves=6,
)
valid_json = st.recursive(  # what msgspec reads too: no NaN, no infinities
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
    max_leaves=6,
)
times = (
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | st.datetimes().map(lambda d: d.isoformat())
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    | st.sampled_from(
        [
            "2026-11-20T01:02:03Z",
            "2026-02-30T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20 01:02:03Z",
            "2026-11-20T01:02:03+02:00",
            "0999-01-01T00:00:00Z",
            "1795136523",
            "1795136523.5",
            " 2026-11-20T01:02:03Z",
            "2026-11-20T01:02:03.1234567Z",
            "yesterday",
            "",
        ]
    )
    | st.integers(-(10**20), 10**20)
    | anything
)


def record_strategy(wild: bool) -> st.SearchStrategy:
    """CloudTrail-shaped records. Tame: every field of the type transform_columns declares
    (values still tricky: empty text, odd addresses and words, missing or null fields).
    Wild: any field may be any JSON value, and a group may be "" or []."""

    def field(strategy):
        return st.one_of(strategy, strategy, strategy, anything) if wild else strategy

    def group(fields: dict) -> st.SearchStrategy:
        g = st.fixed_dictionaries({}, optional=fields) | st.none()
        return field(g) | st.sampled_from(["", [], {}]) if wild else g

    strings = field(text | st.none())
    bools = field(st.booleans() | st.none())
    issuer = group({"type": strings, "arn": strings, "userName": strings})
    session = group({"attributes": group({"mfaAuthenticated": strings}), "sessionIssuer": issuer})
    identity = group(
        {
            "type": strings,
            "principalId": strings,
            "arn": strings,
            "accountId": strings,
            "userName": strings,
            "accessKeyId": strings,
            "invokedBy": strings,
            "sessionContext": session,
        }
    )
    # tame free-form values hold no key transform_columns declares under them
    other_keys = text.map(lambda k: f"x{k}")
    free = anything if wild else st.none() | st.dictionaries(other_keys, valid_json, max_size=3)
    return st.fixed_dictionaries(
        {"eventTime": times if wild else tame_times, "eventName": strings},
        optional={
            **{
                k: strings
                for k in (
                    "eventSource",
                    "eventID",
                    "eventVersion",
                    "eventType",
                    "eventCategory",
                    "requestID",
                    "awsRegion",
                    "recipientAccountId",
                    "sourceIPAddress",
                    "userAgent",
                    "errorCode",
                    "errorMessage",
                )
            },
            "readOnly": bools,
            "managementEvent": bools,
            "userIdentity": identity,
            "requestParameters": group({"userName": strings, "bucketName": strings}) | free,
            "responseElements": group({"ConsoleLogin": strings}) | free,
            "additionalEventData": group({"MFAUsed": strings}) | free,
            "resources": anything if wild else valid_json,
        },
    )


tame_times = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z")
) | st.sampled_from(["2026-11-20T01:02:03Z", "2026-11-20T01:02:03.5Z", "2026-11-20T01:02:03"])
tame = st.lists(record_strategy(wild=False), min_size=1, max_size=12)
records = st.lists(record_strategy(wild=True) | anything, min_size=1, max_size=12)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


@SETTINGS
@given(items=tame)
def test_cloudtrail_batch_path_takes_well_typed_records_and_equals_transform(items) -> None:
    calls = []

    def counting(record):
        calls.append(record)
        return CLOUDTRAIL.transform(record)

    source = dataclasses.replace(CLOUDTRAIL, transform=counting)
    data = "\n".join(_dumps(r) for r in items).encode()
    assert outcome(source, data, "strict") == outcome(CLOUDTRAIL, data, "off")
    # only records without an action (transform() refuses them) are left to transform()
    assert all(r.get("eventName") is None for r in calls), calls


@SETTINGS
@given(items=records, garbage=st.lists(st.binary(max_size=30), max_size=2))
def test_cloudtrail_ndjson_batch_path_equals_transform(items, garbage) -> None:
    lines = [_dumps(r).encode() for r in items] + [g.replace(b"\n", b" ") for g in garbage]
    assert_same(CLOUDTRAIL, b"\n".join(lines) + b"\n")


@SETTINGS
@given(items=st.one_of(tame, records))
def test_cloudtrail_document_batch_path_equals_transform(items) -> None:
    doc = {"eventVersion": "1.09", "Records": items}
    assert_same(CLOUDTRAIL, _dumps(doc).encode())
    assert_same(CLOUDTRAIL, json.dumps(doc, indent=2).encode())  # pretty: exact raw slices


def test_cloudtrail_samples_take_the_batch_path_and_equal_transform(caplog) -> None:
    from tests.conftest import SAMPLES

    caplog.set_level(logging.WARNING, "tarn.logsources.columnar")
    for path in sorted(SAMPLES.glob("*.json.gz")):
        tables, side = assert_same(CLOUDTRAIL, path.read_bytes(), batch=100)
        assert len(tables["aws_cloudtrail"]) > 200 and not side
    assert not caplog.records


def test_records_that_do_not_read_as_declared_go_through_transform() -> None:
    """Wrong types, groups that are not objects, big numbers: transform() decides."""
    calls = []

    def counting(record):
        calls.append(record.get("eventID"))
        return CLOUDTRAIL.transform(record)

    source = dataclasses.replace(CLOUDTRAIL, transform=counting)
    base = {"eventTime": "2026-11-20T01:02:03Z", "eventName": "GetObject"}
    good = [{**base, "eventID": f"g{i}"} for i in range(5)]
    odd = [
        {**base, "eventID": "readOnly-text", "readOnly": "true"},
        {**base, "eventID": "identity-empty-text", "userIdentity": ""},
        {**base, "eventID": "identity-list", "userIdentity": [["type", "Root"]]},
        {**base, "eventID": "name-number", "requestParameters": {"userName": 7}},
        {**base, "eventID": "no-time", "eventTime": None},
        {**base, "eventID": "epoch-time", "eventTime": 1795136523},
        {**base, "eventID": "big", "eventVersion": 2**70},
    ]
    naive = {**base, "eventID": "naive-time", "eventTime": "2026-11-20T01:02:03"}  # batch: UTC
    data = "\n".join(json.dumps(r) for r in [*good, *odd, naive]).encode()
    tables, side = outcome(source, data, "strict", batch=100)
    assert sorted(calls) == sorted(r["eventID"] for r in odd)
    assert (tables, side) == outcome(CLOUDTRAIL, data, "off", batch=100)
    landed = [r["event"]["id"] for r in tables["aws_cloudtrail"]]
    assert landed[:5] == [f"g{i}" for i in range(5)]  # in record order, batch rows and others
    assert "epoch-time" in landed and "naive-time" in landed and "readOnly-text" in landed
    reasons = {s[3]: s[2] for s in side}
    assert any("bad ts None" in r for r in reasons.values())


# -- the framework, on a small source of its own ----------------------------------------------
APP_YML = """name: app
ingest: {format: ndjson}
schema:
  ecs: [message, source.ip, user.name, user.target.name, event.created]
  fields:
    - {name: app.count, type: long}
    - {name: app.payload, type: json}
    - {name: app.day, type: date}
"""
APP_TRANSFORM = """
import pyarrow.compute as pc
from tarn.logsources import columnar as col
from tarn.logsources.helpers import ip_or_none, json_text

MODE = {"value": "ok"}


def transform(r):
    if r.get("skip"):
        return None
    return {"ts": r["t"], "message": r.get("msg"), "source": {"ip": ip_or_none(r.get("ip"))},
            "user": {"name": r.get("u"), "target": {"name": r.get("v")}},
            "event": {"created": r.get("created")},
            "app": {"count": r.get("n"), "payload": json_text(r.get("p")), "day": r.get("day")}}


@col.columnar(raw={"t": "string", "msg": "string", "ip": "string", "u": "string", "v": "string",
                   "n": "long", "skip": "boolean", "p": "json", "p.k": "string",
                   "created": "string", "day": "string"})
def transform_columns(batch):
    if MODE["value"] == "raise":
        raise RuntimeError("a bug in the batch function")
    out = {"ts": col.timestamps(batch["t"]), "message": batch["msg"], "source.ip": col.ips(batch["ip"]),
           "user.name": batch["u"], "user.target.name": batch["v"], "event.created": batch["created"],
           "app.count": batch["n"], "app.payload": batch.json("p"), "app.day": batch["day"],
           col.ROW_PATH: col.truthy(batch["skip"])}
    if MODE["value"] == "undeclared":
        out["app.nope"] = "x"
    return out
"""


@pytest.fixture
def app(tmp_path: Path):
    src = logsources.load_folder(make(tmp_path, "app", APP_YML, APP_TRANSFORM))
    assert src.columnar is not None
    return src


def _lines(*records) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode()


def test_framework_fills_related_original_and_tarn_like_rows(app) -> None:
    data = _lines(
        {"t": "2026-11-20T01:02:03Z", "ip": "10.0.0.1", "u": "alice", "v": "alice", "n": 3,
         "p": {"b": 1, "a": "é"}, "created": "2026-11-20T01:00:00+02:00", "day": "2026-11-19"},
        {"t": "2026-11-20T01:02:04.5Z", "u": "", "v": "bob", "p": [1, 2], "day": "2026-11-20T10:00:00Z"},
        {"t": "2026-11-20T01:02:05Z", "skip": True},
        "not json",
        {"t": "2026-11-20T01:02:06Z", "day": "not a day"},
        {"t": "2026-11-20T01:02:07Z", "created": "soon"},
        [1, 2],
    )  # fmt: skip
    tables, side = assert_same(app, data)
    rows = tables["app"]
    assert [r["ts"].isoformat() for r in rows] == [
        "2026-11-20T01:02:03+00:00",
        "2026-11-20T01:02:04.500000+00:00",
    ]
    first, second = rows
    assert first["related"]["user"] == ["alice"] and second["related"]["user"] == ["bob"]
    assert first["related"]["ip"] == ["10.0.0.1"] and second["related"]["ip"] == []
    assert first["app"]["payload"] == '{"a":"é","b":1}'
    assert first["event"]["created"].isoformat() == "2026-11-19T23:00:00+00:00"
    assert first["event"]["original"].startswith('{"t": "2026-11-20T01:02:03Z"')
    assert first["tarn"] == {"log_source": "app", "table": "app", "ingest_id": "ing"}
    stages = sorted(s[1] for s in side)
    assert stages == ["parse", "transform", "validate", "validate"], side


def test_a_failing_batch_function_falls_back_and_warns_once(app, caplog) -> None:
    module = __import__("sys").modules[app.transform.__module__]
    module.MODE["value"] = "raise"
    caplog.set_level(logging.WARNING, "tarn.logsources.columnar")
    col._warned.discard("app")
    data = _lines(*({"t": f"2026-11-20T01:02:0{i}Z", "msg": str(i)} for i in range(9)))
    tables, side = outcome(app, data, "auto", batch=4)
    assert [r["message"] for r in tables["app"]] == [str(i) for i in range(9)] and not side
    assert len([r for r in caplog.records if "batch transform failed" in r.message]) == 1
    with pytest.raises(RuntimeError, match="a bug"):
        outcome(app, data, "strict")
    module.MODE["value"] = "undeclared"
    with pytest.raises(col.ColumnarError, match=r"app\.nope"):
        outcome(app, data, "strict")


def test_chunks_hold_at_most_batch_records(app) -> None:
    data = _lines(*({"t": "2026-11-20T01:02:03Z", "msg": str(i)} for i in range(23)), "bad")
    chunks = list(normalize(io.BytesIO(data), app, "ing", 5, columnar="strict"))
    sizes = [c.rows + c.sideline.num_rows for c in chunks]
    assert sizes == [5, 5, 5, 5, 4] and chunks[-1].final
    assert [c.index for c in chunks] == [0, 1, 2, 3, 4]


def test_off_mode_and_unknown_modes(app) -> None:
    with pytest.raises(ValueError, match="columnar must be one of"):
        list(normalize(io.BytesIO(b""), app, "ing", columnar="fast"))


def test_loader_requires_the_decorator(tmp_path: Path) -> None:
    bad = "def transform(r):\n    return r\n\ndef transform_columns(batch):\n    return {}\n"
    with pytest.raises(LogSourceError, match=r"@columnar\(raw="):
        logsources.load_folder(make(tmp_path, "app", APP_YML, bad))


def test_undeclared_raw_types_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be read in a batch"):
        col.columnar(raw={"t": "timestamp"})


def test_extending_keeps_the_batch_function_only_with_the_inherited_transform(
    tmp_path: Path,
) -> None:
    inherit = tmp_path / "a" / "mine"
    inherit.mkdir(parents=True)
    (inherit / "log_source.yml").write_text(
        "name: mine\nextends: aws_cloudtrail\nschema: {fields: [{name: my.team, type: keyword}]}\n"
    )
    mine = logsources.load_folder(inherit)
    assert mine.columnar is logsources.builtin("aws_cloudtrail").transform_columns
    tables, _ = assert_same(
        mine, json.dumps({"eventTime": "2026-11-20T01:02:03Z", "eventName": "X"}).encode()
    )
    assert tables["mine"][0]["my"] is None

    own = tmp_path / "b" / "mine"
    own.mkdir(parents=True)
    (own / "log_source.yml").write_text("name: mine\nextends: aws_cloudtrail\n")
    (own / "transform.py").write_text("def transform(r):\n    return {'ts': r['eventTime']}\n")
    assert logsources.load_folder(own).columnar is None

    def routed_by(folder: Path, field: str, value: str) -> logsources.LogSource:
        folder.mkdir(parents=True)
        (folder / "log_source.yml").write_text(
            f"name: mine\nextends: aws_cloudtrail\ntable_by: {{field: {field}, map: {{{value}: x}}}}\n"
        )
        (folder / "tables").mkdir()
        (folder / "tables" / "x.yml").write_text("schema: {ecs: [message, event.action]}\n")
        return logsources.load_folder(folder)

    mine = routed_by(tmp_path / "c" / "mine", "eventSource", "x.amazonaws.com")
    assert mine.columnar is not None  # eventSource is read as text: tables chosen per batch
    data = _lines(
        *(
            {"eventTime": "2026-11-20T01:02:03Z", "eventName": f"E{i}", "eventSource": source}
            for i, source in enumerate(["x.amazonaws.com", "y.amazonaws.com", None] * 3)
        )
    )
    tables, side = assert_same(mine, data)
    assert [r["event"]["action"] for r in tables["mine_x"]] == ["E0", "E3", "E6"]
    assert len(side) == 6 and all(s[1] == "validate" for s in side)
    # a dotted field: the row path reads it its own way, so rows decide
    assert routed_by(tmp_path / "d" / "mine", "userIdentity.type", "Root").columnar is None


# -- helpers agree with their row versions -----------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
        | st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)  # "+00:00"
        | st.datetimes(timezones=st.just(UTC)).map(
            lambda d: (
                d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}"[: d.second % 6 + 1] + "Z"
            )
        )
        | st.from_regex(r"\A[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
        | st.from_regex(r"\A2026-11-20T01:02:03\.[0-9]{1,12}Z\Z")
        | st.from_regex(r"\A[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00\Z")
        | st.from_regex(r"\A2026-11-20T01:02:03\.[0-9]{1,12}[+-]0[01]:00\Z")
        | st.text(max_size=25)
        | st.none(),
        max_size=20,
    )
)
def test_timestamps_equal_parse_ts(values) -> None:
    got = col.timestamps(pa.array(values, pa.string())).to_pylist()

    def expected(v):
        try:
            return parse_ts(v)
        except (ValueError, TypeError, OverflowError, OSError):
            return None

    assert got == [expected(v) for v in values]

    def iso(v):
        try:
            return iso_ts_or_none(v)
        except OverflowError:
            return None

    assert col.timestamps(pa.array(values, pa.string()), iso_ts_or_none).to_pylist() == [
        iso(v) for v in values
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 4).flatmap(
        lambda k: st.lists(
            st.tuples(*[st.sampled_from(["", "a", "b", "c", None]) for _ in range(k)]),
            max_size=10,
        ).map(lambda rows: (k, rows))
    ),
    st.lists(st.lists(st.sampled_from(["", "a", "b", None]), max_size=3) | st.none(), max_size=10),
)
def test_related_equals_unique(case, lists) -> None:
    k, rows = case
    n = len(rows)
    columns = [pa.array([r[j] for r in rows], pa.string()) for j in range(k)]
    got = col._related(n, columns).to_pylist()
    assert got == [unique([r[j] for j in range(k)]) for r in rows]
    if n and k:
        own = (lists + [None] * n)[:n]
        with_lists = col._related(n, [pa.array(own, pa.list_(pa.string())), *columns]).to_pylist()
        assert with_lists == [unique([own[i], *rows[i]]) for i in range(n)]


def test_per_value_calls_once_per_distinct_value() -> None:
    seen = []

    def fn(v):
        seen.append(v)
        return v.upper()

    out = col.per_value(fn, pa.array(["a", "b", None, "a", "b"]), pa.string())
    assert out.to_pylist() == ["A", "B", None, "A", "B"] and sorted(seen) == ["a", "b"]


def test_either_and_truthy_follow_python() -> None:
    a = pa.array(["x", "", None, "y"])
    b = pa.array(["p", "q", "r", None])
    assert col.either(a, b).to_pylist() == [
        x or y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=False)
    ]
    assert col.truthy(pa.array([0, 1, None])).to_pylist() == [False, True, False]
    for lists in ([["a", "b"], [], None, [None, "c"], ["d"]], [[{"k": 1}], [], None]):
        for array in (pa.array(lists), pa.array(lists).slice(1)):  # a slice has an offset
            assert col.first(array).to_pylist() == [v[0] if v else None for v in array.to_pylist()]
    assert (
        datetime(2026, 1, 1, tzinfo=UTC)
        == col.timestamps(pa.array([datetime(2026, 1, 1)], pa.timestamp("us"))).to_pylist()[0]
    )


def test_a_value_that_does_not_fit_its_column_is_sidelined_as_rows_are(tmp_path: Path) -> None:
    yml = "name: small\ningest: {format: ndjson}\nschema: {fields: [{name: small.n, type: int}]}\n"
    code = (
        "from tarn.logsources import columnar as col\n"
        "def transform(r):\n    return {'ts': r['t'], 'small': {'n': r.get('n')}}\n"
        "@col.columnar(raw={'t': 'string', 'n': 'long'})\n"
        "def transform_columns(batch):\n"
        "    return {'ts': col.timestamps(batch['t']), 'small.n': batch['n']}\n"
    )
    src = logsources.load_folder(make(tmp_path, "small", yml, code))
    data = _lines(*({"t": "2026-11-20T01:02:03Z", "n": n} for n in (1, 2**40, -5, 2**31)))
    tables, side = assert_same(src, data)
    assert [r["small"]["n"] for r in tables["small"]] == [1, -5]
    assert [s[0] for s in side] == [1, 3] and all("does not fit" in s[2] for s in side)


def test_delimited_rows_are_read_by_column_like_records(tmp_path: Path) -> None:
    yml = "name: flat\ningest: {format: csv}\nschema: {ecs: [message, labels, user.name]}\n"
    code = (
        "from tarn.logsources import columnar as col\n"
        "from tarn.logsources.helpers import json_text\n"
        "def transform(r):\n"
        "    return {'ts': r['t'], 'message': r.get('m'), 'labels': json_text(r.get('x')),\n"
        "            'user': {'name': r.get('u') or r.get('m')}}\n"
        "@col.columnar(raw={'t': 'string', 'm': 'string', 'u': 'string', 'x': 'json'})\n"
        "def transform_columns(batch):\n"
        "    return {'ts': col.timestamps(batch['t']), 'message': batch['m'],\n"
        "            'labels': batch.json('x'), 'user.name': col.either(batch['u'], batch['m'])}\n"
    )
    src = logsources.load_folder(make(tmp_path, "flat", yml, code))
    data = (
        b"t,m,x,u,m\n"  # a repeated column: the last one counts, as in the row's dict
        b"2026-11-20T01:02:03Z,a,{},,b\n"
        b'2026-11-20T01:02:04Z,,"x,y",u1,\n'
        b"not a time,c,z,,d\n"
        b"2026-11-20T01:02:05Z,e\n"
    )
    tables, side = assert_same(src, data)
    assert [(r["message"], r["labels"], r["user"]["name"]) for r in tables["flat"]] == [
        ("b", '"{}"', "b"),
        (None, '"x,y"', "u1"),
    ]
    assert sorted(s[1] for s in side) == ["parse", "validate"]


@pytest.mark.parametrize("shape", ["ndjson", "document", "csv"])
def test_the_rest_of_a_record_is_its_undeclared_keys(tmp_path: Path, shape: str) -> None:
    fmt = "csv" if shape == "csv" else "json"
    yml = f"name: rest\ningest: {{format: {fmt}{', records_path: Records' if fmt == 'json' else ''}}}\nschema: {{ecs: [message, labels]}}\n"
    code = (
        "from tarn.logsources import columnar as col\n"
        "from tarn.logsources.helpers import json_text\n"
        "def transform(r):\n"
        "    rest = {k: v for k, v in r.items() if k not in ('t', 'm')}\n"
        "    return {'ts': r['t'], 'message': r.get('m'), 'labels': json_text(rest or None)}\n"
        "@col.columnar(raw={'t': 'string', 'm': 'string', '*': 'json'})\n"
        "def transform_columns(batch):\n"
        "    rest = [r or None for r in batch.values('*')]\n"
        "    return {'ts': col.timestamps(batch['t']), 'message': batch['m'],\n"
        "            'labels': col.json_texts(rest)}\n"
    )
    src = logsources.load_folder(make(tmp_path, "rest", yml, code))
    records = [
        {"t": "2026-11-20T01:02:03Z", "m": "a", "z": 1, "b": [1, {"c": "é"}]},
        {"t": "2026-11-20T01:02:04Z", "m": "b"},
        {"b": None, "t": "2026-11-20T01:02:05Z", "m": "c", "b2": 2**70},
    ]
    if shape == "csv":
        data = b"t,m,z,b\n2026-11-20T01:02:03Z,a,1,x\n2026-11-20T01:02:04Z,b,,\n"
    elif shape == "document":
        data = json.dumps({"Records": records}).encode()
    else:
        data = _lines(
            *records, '{"t": "2026-11-20T01:02:06Z", "m": "d", "t": "2026-11-20T01:02:07Z"}'
        )
    tables, _ = assert_same(src, data)
    labels = [r["labels"] for r in tables["rest"]]
    if shape == "csv":
        assert labels == ['{"b":"x","z":"1"}', '{"b":null,"z":null}']
    else:
        assert labels[:3] == [
            '{"b":[1,{"c":"é"}],"z":1}',
            None,
            '{"b":null,"b2":1180591620717411303424}',
        ]


def test_checked_helpers_say_where_the_row_helper_would_fail() -> None:
    values, failed = col.per_value_checked(
        int, pa.array(["1", "x", None, "99999999999999999999", "1"]), pa.int64()
    )
    assert values.to_pylist() == [1, None, None, None, 1]
    assert failed.to_pylist() == [False, True, False, True, False]

    def reader(v):
        if v == "boom":
            raise OverflowError("out of range")
        return iso_ts_or_none(v)

    text = pa.array(["2026-11-20T01:02:03Z", "boom", "soon", None, "2026-11-20T01:02:03+01:00"])
    ts, raised = col.timestamps_checked(text, reader)
    assert [t.isoformat() if t else None for t in ts.to_pylist()] == [
        "2026-11-20T01:02:03+00:00", None, None, None, "2026-11-20T00:02:03+00:00",
    ]  # fmt: skip
    assert raised.to_pylist() == [False, True, False, False, False]


def test_batch_has_tells_a_null_key_from_a_missing_one(tmp_path: Path) -> None:
    yml = "name: keys\ningest: {format: ndjson}\nschema: {ecs: [message]}\n"
    code = (
        "import pyarrow.compute as pc\n"
        "from tarn.logsources import columnar as col\n"
        "def transform(r):\n"
        "    return {'ts': r['t'], 'message': 'has' if 'm' in (r.get('g') or {}) else 'no'}\n"
        "@col.columnar(raw={'t': 'string', 'g.m': 'string'})\n"
        "def transform_columns(batch):\n"
        "    return {'ts': col.timestamps(batch['t']),\n"
        "            'message': pc.if_else(batch.has('g.m'), 'has', 'no')}\n"
    )
    src = logsources.load_folder(make(tmp_path, "keys", yml, code))
    t = "2026-11-20T01:02:03Z"
    data = _lines(
        {"t": t, "g": {"m": None}}, {"t": t, "g": {}}, {"t": t}, {"t": t, "g": {"m": "x"}}
    )
    tables, _ = assert_same(src, data)
    assert [r["message"] for r in tables["keys"]] == ["has", "no", "no", "has"]


@pytest.mark.parametrize("shape", ["zeek tsv", "zeek json"])
def test_batch_field_reads_one_key_of_the_rest(tmp_path: Path, shape: str) -> None:
    """batch.field(key) is the key's value in each record's rest (its name may hold dots);
    Zeek TSV lines give it column by column, JSON records from their dicts."""
    yml = "name: keyed\ningest: {format: zeek, table: t}\nschema: {ecs: [message, labels]}\n"
    code = (
        "import pyarrow as pa\n"
        "from tarn.logsources import columnar as col\n"
        "from tarn.logsources.helpers import json_text\n"
        "def transform(r):\n"
        "    return {'ts': r.get('ts'), 'message': r.get('id.orig_h'),\n"
        "            'labels': json_text([r.get('n'), r.get('gone')])}\n"
        "@col.columnar(raw={'_path': 'string', '*': 'json'})\n"
        "def transform_columns(batch):\n"
        "    got = batch.fields(['ts', 'n', 'gone'])\n"
        "    return {'ts': col.timestamps(pa.array(got['ts'], pa.string())),\n"
        "            'message': pa.array(batch.field('id.orig_h'), pa.string()),\n"
        "            'labels': col.json_texts([[a, b] for a, b in zip(got['n'], got['gone'])])}\n"
    )
    src = logsources.load_folder(make(tmp_path, "keyed", yml, code))
    t = "2026-11-20T01:02:03Z"
    if shape == "zeek tsv":
        data = (
            "#fields\tts\tid.orig_h\tn\n#types\tstring\taddr\tset[string]\n"
            f"{t}\t10.0.0.1\ta,b\n{t}\t-\t(empty)\n{t}\t10.0.0.3\t-\n"
            # a new header in the same batch: other fields, another order
            f"#fields\tgone\tts\n#types\tcount\tstring\n7\t{t}\n"
            f"#fields\tid.orig_h\tts\tn\n10.0.0.5\t{t}\tx\n"
        ).encode()
        want = [
            ("10.0.0.1", '[["a","b"],null]'), (None, "[[],null]"), ("10.0.0.3", "[null,null]"),
            (None, '[null,"7"]'), ("10.0.0.5", '["x",null]'),
        ]  # fmt: skip
    else:
        data = _lines(
            {"ts": t, "id.orig_h": "10.0.0.1", "n": 1, "gone": 2},
            {"ts": t, "n": [1]},
            {"id.orig_h": "10.0.0.3", "ts": t},
        )
        want = [("10.0.0.1", "[1,2]"), (None, "[[1],null]"), ("10.0.0.3", "[null,null]")]
    tables, _ = assert_same(src, data)
    assert [(r["message"], r["labels"]) for r in tables["keyed_t"]] == want


def test_batch_fields_of_some_records_equal_field_at_those_records() -> None:
    from tarn.logsources._parse import UNDECODED, Ingest, parse

    plan = col.columnar(raw={"_path": "string", "*": "json"})(lambda batch: {})
    tsv = b"#fields\ta\tb.c\n1\t-\n#fields\tb.c\td\n2\tx\n3\t(empty)\n"
    lines = [
        {"a": 1, "b.c": [2]},
        {"a": 2},
        {"b.c": None, "d": "x"},
        {"a": 3, "b.c": 4, "d": {}},
    ]
    shapes = {
        "json": ([UNDECODED] * len(lines), [json.dumps(r) for r in lines]),
        "tsv": tuple(map(list, zip(*[(r, t) for _, t, r in parse(
            io.BytesIO(tsv), Ingest(format="zeek", table="x"), lazy=True)], strict=True))),
    }  # fmt: skip
    for shape, (records, texts) in shapes.items():
        batch, kept = col.read_records(plan, records, texts)
        assert kept == list(range(len(records))), shape
        keys = ["a", "b.c", "d", "none"]
        whole = {k: batch.field(k) for k in keys}
        for rows in ([0], [2, 0], [1, 2], list(range(len(records)))):
            got = batch.fields(keys, rows)
            assert got == {k: [whole[k][j] for j in rows] for k in keys}, (shape, rows)
        assert batch.fields(keys) == whole
    assert whole == {"a": ["1", None, None], "b.c": [None, "2", "3"], "d": [None, "x", ""],
                     "none": [None] * 3}  # fmt: skip


def test_batch_field_without_the_rest_declared_says_what_to_add(tmp_path: Path) -> None:
    yml = "name: norest\ningest: {format: ndjson}\nschema: {ecs: [message]}\n"
    code = (
        "import pyarrow as pa\n"
        "from tarn.logsources import columnar as col\n"
        "def transform(r):\n"
        "    return {'ts': r['t'], 'message': r.get('m')}\n"
        "@col.columnar(raw={'t': 'string'})\n"
        "def transform_columns(batch):\n"
        "    return {'ts': col.timestamps(batch['t']),\n"
        "            'message': pa.array(batch.field('m'), pa.string())}\n"
    )
    src = logsources.load_folder(make(tmp_path, "norest", yml, code))
    data = _lines({"t": "2026-11-20T01:02:03Z", "m": "a"})
    with pytest.raises(col.ColumnarError, match=r'add "\*": "json" to raw='):
        outcome(src, data, "strict")
    tables, _ = outcome(src, data, "auto")  # auto: the batch goes record by record instead
    assert [r["message"] for r in tables["norest"]] == ["a"]
