"""Loading log source folders: validation errors name the file, the key and the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from tarn import logsources
from tarn.exceptions import UnknownLogSourceError
from tarn.logsources import _ecs, _spec
from tarn.logsources._schema import SCALAR_TYPES
from tarn.logsources.exceptions import LogSourceError


def make(
    root: Path, name: str, yml: str, transform: str | None = None, tables: dict | None = None
) -> Path:
    folder = root / "log_sources" / name
    folder.mkdir(parents=True)
    (folder / "log_source.yml").write_text(yml)
    if transform is not None:
        (folder / "transform.py").write_text(transform)
    for suffix, text in (tables or {}).items():
        (folder / "tables").mkdir(exist_ok=True)
        (folder / "tables" / f"{suffix}.yml").write_text(text)
    return folder


def load(tmp_path: Path, name: str, yml: str, **kw) -> logsources.LogSource:
    return logsources.load_folder(make(tmp_path, name, yml, **kw))


def problems(tmp_path: Path, name: str, yml: str, **kw) -> str:
    with pytest.raises(LogSourceError) as info:
        load(tmp_path, name, yml, **kw)
    return str(info.value)


def test_ecs_fields_take_their_types_from_the_ecs_data(tmp_path: Path) -> None:
    src = load(
        tmp_path,
        "app",
        "name: app\ningest: {format: ndjson}\nschema:\n  ecs: [source.ip, source.port, event.category, event.created]\n"
        "  fields: [{name: app.score, type: double}]\n",
    )
    types = src.table_specs["app"].columns
    assert types["source.port"] == pa.int64()
    assert types["event.category"] == pa.list_(pa.string())
    assert types["event.created"] == pa.timestamp("us", tz="UTC")
    assert types["app.score"] == pa.float64()
    assert {"ts", "event.original", "related.ip", "tarn.log_source", "tarn.ingest_id"} <= set(types)
    assert src.table == "app" and list(src.tables) == ["app"]
    assert src.schema.field("ts").nullable is False
    doc = src.schema.field("source").type.field("ip").metadata[b"doc"]
    assert doc.decode() == _ecs.load().fields["source.ip"].description


def test_unknown_ecs_name_is_an_error_with_suggestions(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        "app",
        "name: app\ningest: {format: ndjson}\nschema: {ecs: [source.ipp, user.nmae]}\n",
    )
    assert "log_source.yml" in msg
    assert "`schema.ecs`: `source.ipp` is not an ECS 8.11 field" in msg
    assert "did you mean source.ip" in msg
    assert "user.name" in msg


def test_yaml_errors_name_the_key_and_the_fix(tmp_path: Path) -> None:
    msg = problems(
        tmp_path, "app", "name: app\ningest: {formt: ndjson}\nschema: {ecs: [message]}\n"
    )
    assert "`ingest.formt`: unknown key. Fix: did you mean `format`?" in msg
    msg = problems(tmp_path, "app2", "name: app2\ningest: {format: xml}\n")
    assert "`ingest.format`: 'xml' is not allowed. Fix: use one of json, ndjson" in msg
    msg = problems(
        tmp_path,
        "app3",
        "name: app3\ningest: {format: csv}\nschema: {fields: [{name: a, type: text}]}\n",
    )
    assert "`schema.fields.0.type`" in msg and "list<one of those>" in msg
    msg = problems(tmp_path, "app4", "name: app4\ningest: [format, ndjson]\n")
    assert "`ingest`" in msg and "Fix: write a mapping" in msg


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    msg = problems(tmp_path, "app", "name: app\ningest: {format: ndjson\n")
    assert "not valid YAML at line" in msg


def test_folder_and_name_must_agree(tmp_path: Path) -> None:
    msg = problems(
        tmp_path, "app", "name: other\ningest: {format: ndjson}\nschema: {ecs: [message]}\n"
    )
    assert "`name`: is 'other' but the folder is 'app'" in msg


def test_a_source_needs_a_table(tmp_path: Path) -> None:
    assert "declares no table" in problems(tmp_path, "app", "name: app\ningest: {format: ndjson}\n")


def test_format_specific_keys_are_checked(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        "app",
        "name: app\ningest: {format: ndjson, records_path: R, delimiter: ';'}\nschema: {ecs: [message]}\n",
    )
    assert "`ingest.records_path`: only the json format" in msg
    assert "`ingest.delimiter`: only the csv format" in msg


def test_tables_and_table_by(tmp_path: Path) -> None:
    src = load(
        tmp_path,
        "net",
        "name: net\ningest: {format: zeek}\ntable_by: {field: _path, map: {conn: conn, dns: dns}}\n",
        tables={
            "conn": "schema: {ecs: [source.ip]}\n",
            "dns": "schema: {ecs: [dns.question.name]}\n",
        },
    )
    assert sorted(src.tables) == ["net_conn", "net_dns"]
    assert src.default_table is None and src.table == "net"
    assert src.table_by is not None and src.table_by.lookup() == {"conn": "conn", "dns": "dns"}


def test_table_by_needs_the_tables_it_maps_to(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        "net",
        "name: net\ningest: {format: zeek}\ntable_by: {field: _path, map: {conn: conn, dns: dns}}\n",
        tables={"conn": "schema: {ecs: [source.ip]}\n"},
    )
    assert "`table_by.map`: no schema for table suffix(es) dns. Fix: add tables/dns.yml" in msg


def test_bad_table_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError) as info:
        load(
            tmp_path,
            "net",
            "name: net\ningest: {format: zeek, table: conn}\n",
            tables={"conn": "schema: {ecs: [nope.nope]}\n"},
        )
    assert info.value.file.name == "conn.yml"
    with pytest.raises(LogSourceError, match="tables/dns.yml|dns.yml"):
        load(
            tmp_path,
            "net2",
            "name: net2\ningest: {format: zeek}\n",
            tables={"dns": "schema: {ecs: [message]}\nextra: 1\n"},
        )


def test_ingest_table_names_the_default_table(tmp_path: Path) -> None:
    src = load(
        tmp_path,
        "net",
        "name: net\ningest: {format: zeek, table: conn}\n",
        tables={"conn": "schema: {ecs: [source.ip]}\n"},
    )
    assert src.table == "net_conn" and src.default_table == "net_conn"
    src = load(
        tmp_path,
        "web",
        "name: web\ningest: {format: kv, table: access}\nschema: {ecs: [url.path]}\n",
    )
    assert list(src.tables) == ["web_access"]


def test_custom_field_with_an_ecs_name_must_keep_its_type(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        "app",
        "name: app\ningest: {format: ndjson}\nschema: {fields: [{name: source.port, type: string}]}\n",
    )
    assert "`source.port` is an ECS field of type long" in msg
    src = load(
        tmp_path,
        "app2",
        "name: app2\ningest: {format: ndjson}\nschema: {fields: [{name: source.port, type: long}]}\n",
    )
    assert src.table_specs["app2"].columns["source.port"] == pa.int64()


def test_value_and_group_conflict(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        "app",
        "name: app\ningest: {format: ndjson}\nschema: {fields: [{name: a, type: string}, {name: a.b, type: string}]}\n",
    )
    assert "both as a value and as a group" in msg


def test_transform_module_errors(tmp_path: Path) -> None:
    yml = "name: {n}\ningest: {{format: ndjson}}\nschema: {{ecs: [message]}}\n"
    assert "must define transform(record)" in problems(
        tmp_path, "a1", yml.format(n="a1"), transform="x = 1\n"
    )
    assert "fails to import: ZeroDivisionError" in problems(
        tmp_path, "a2", yml.format(n="a2"), transform="1/0\n"
    )
    msg = problems(tmp_path, "a3", yml.format(n="a3") + "transform: missing.py\n")
    assert "`transform`: missing.py does not exist" in msg


def test_transform_module_may_define_dataclasses(tmp_path: Path) -> None:
    code = "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\ndef transform(r):\n    return r\n"
    src = load(
        tmp_path,
        "dc",
        "name: dc\ningest: {format: ndjson}\nschema: {ecs: [message]}\n",
        transform=code,
    )
    assert src.transform({"a": 1}) == {"a": 1}


def test_user_source_extends_a_builtin(tmp_path: Path) -> None:
    make(
        tmp_path,
        "my_trail",
        "name: my_trail\nextends: aws_cloudtrail\nschema:\n  fields: [{name: my.team, type: keyword}]\n",
    )
    src = logsources.get("my_trail", str(tmp_path))
    base = logsources.builtin("aws_cloudtrail")
    assert src.format == "json" and src.records_path == "Records"
    assert src.transform is base.transform
    cols = src.table_specs["my_trail"].columns
    assert "my.team" in cols and "aws.cloudtrail.request_id" in cols and "event.action" in cols
    assert src.extends == "aws_cloudtrail" and not src.builtin


def test_extending_an_unknown_source(tmp_path: Path) -> None:
    msg = problems(tmp_path, "x", "name: x\nextends: nope\n")
    assert "`extends`: there is no built-in log source 'nope'. Fix: use one of" in msg
    assert "aws_cloudtrail" in msg


def test_user_source_with_a_builtin_name_replaces_it_and_may_extend_it(tmp_path: Path) -> None:
    make(
        tmp_path,
        "aws_cloudtrail",
        "name: aws_cloudtrail\nextends: aws_cloudtrail\nschema: {fields: [{name: my.flag, type: boolean}]}\n",
        transform="from tarn.logsources import builtin\n"
        "base = builtin('aws_cloudtrail').transform\n"
        "def transform(r):\n    row = base(r)\n    row['my'] = {'flag': True}\n    return row\n",
    )
    src = logsources.get("aws_cloudtrail", str(tmp_path))
    assert not src.builtin and "my.flag" in src.table_specs["aws_cloudtrail"].columns
    assert logsources.builtin("aws_cloudtrail").builtin


def test_names_that_are_not_source_names_are_unknown(tmp_path: Path) -> None:
    (tmp_path / "log_sources").mkdir()
    for name in ("../etc", "AWS", "", "a/b"):
        with pytest.raises(UnknownLogSourceError):
            logsources.get(name, str(tmp_path))


def test_one_broken_source_does_not_stop_the_others(tmp_path: Path) -> None:
    make(tmp_path, "broken", "name: broken\ningest: {format: nope}\n")
    ok, failed = logsources.load_all(str(tmp_path))
    assert "broken" in failed and "aws_cloudtrail" in ok
    assert logsources.get("aws_cloudtrail", str(tmp_path)).name == "aws_cloudtrail"


# -- the data the loader relies on ------------------------------------------------------------
def test_ecs_data_is_well_formed() -> None:
    ecs = _ecs.load()
    assert ecs.version == "8.11"
    scalar = "|".join(SCALAR_TYPES)
    for f in ecs.fields.values():
        assert re.fullmatch(rf"({scalar})|list<({scalar})>", f.type), f
        assert f.description and len(f.description) < 200, f
    sets = {name.split(".")[0] for name in ecs.fields}
    for needed in (
        "event", "source", "destination", "network", "user", "host", "process", "file", "url",
        "http", "dns", "tls", "rule", "threat", "observer", "cloud", "client", "server", "email",
        "user_agent", "error", "related", "organization", "group", "service", "log",
    ):  # fmt: skip
        assert needed in sets
    for name in (
        "user.target.name",
        "source.geo.country_iso_code",
        "process.parent.hash.sha256",
        "tls.server.x509.subject.common_name",
        "log.syslog.facility.code",
    ):
        assert name in ecs.fields
    # core columns agree with the ECS data
    assert ecs.fields["related.ip"].type == "list<ip>"
    assert ecs.fields["event.original"].type == "string"


def test_json_schema_types_match_the_arrow_types() -> None:
    schema = json.loads(_spec.SOURCE_SCHEMA_FILE.read_text())
    pattern = schema["$defs"]["schema"]["properties"]["fields"]["items"]["properties"]["type"][
        "pattern"
    ]
    for t in SCALAR_TYPES:
        assert re.fullmatch(pattern, t) and re.fullmatch(pattern, f"list<{t}>")
    assert not re.fullmatch(pattern, "list<list<string>>")
