from datetime import UTC, datetime

import pyarrow as pa
import pytest

from tarn import config, query
from tarn.exceptions import QueryError
from tarn.lake import Lake

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(
            "event", pa.struct([pa.field("action", pa.string()), pa.field("outcome", pa.string())])
        ),
        pa.field("user", pa.struct([pa.field("name", pa.string())])),
        pa.field("source", pa.struct([pa.field("ip", pa.string())])),
    ]
)


@pytest.fixture
def cfg(clean_env):
    cfg = config.load()
    rows = [
        ("2026-11-20T01:00:00", "ConsoleLogin", "failure", "carol", "175.16.199.37"),
        ("2026-11-20T01:01:00", "ConsoleLogin", "failure", "carol", "175.16.199.37"),
        ("2026-11-20T01:02:00", "ConsoleLogin", "success", "carol", "175.16.199.37"),
        ("2026-11-20T02:00:00", "GetObject", "success", "bob", "81.2.69.142"),
        ("2026-11-21T02:00:00", "GetObject", "success", "alice", "81.2.69.142"),
    ]
    table = pa.Table.from_pylist(
        [
            {
                "ts": datetime.fromisoformat(t).replace(tzinfo=UTC),
                "event": {"action": a, "outcome": o},
                "user": {"name": u},
                "source": {"ip": ip},
            }
            for t, a, o, u, ip in rows
        ],
        schema=SCHEMA,
    )
    Lake(cfg).commit("aws_cloudtrail", table, "b1")
    return cfg


def test_trino_dialect_runs_on_duckdb_with_nested_fields(cfg) -> None:
    r = query.run(
        cfg,
        "SELECT event.action, count(*) AS n, approx_distinct(user.name) AS users FROM iceberg.tarn.aws_cloudtrail "
        "WHERE ts >= TIMESTAMP '2026-11-20 00:00:00 UTC' AND ts < TIMESTAMP '2026-11-21 00:00:00 UTC' "
        "GROUP BY event.action ORDER BY n DESC",
    )
    assert r.engine == "duckdb"
    assert r.rows == [("ConsoleLogin", 3, 1), ("GetObject", 1, 1)]


def test_string_functions_ctes_and_self_join(cfg) -> None:
    r = query.run(
        cfg,
        "WITH fails AS (SELECT user.name AS who, source.ip AS ip FROM aws_cloudtrail WHERE event.outcome = 'failure') "
        "SELECT DISTINCT upper(f.who) AS who, split_part(s.source.ip, '.', 1) AS first_octet "
        "FROM fails f JOIN tarn.aws_cloudtrail s ON s.source.ip = f.ip AND s.event.outcome = 'success'",
    )
    assert r.as_dicts() == [{"who": "CAROL", "first_octet": "175"}]


def test_unknown_table_lists_the_tables(cfg) -> None:
    with pytest.raises(QueryError, match="tables: aws_cloudtrail"):
        query.run(cfg, "SELECT 1 FROM nope")


def test_syntax_error_gives_line_and_column(cfg) -> None:
    with pytest.raises(QueryError, match=r"line 2, column"):
        query.run(cfg, "SELECT 1\nFROM aws_cloudtrail WHERE (")


def test_engine_rejection_carries_the_engine_message(cfg) -> None:
    with pytest.raises(QueryError, match="DuckDB rejected the query.*nope"):
        query.run(cfg, "SELECT nope FROM aws_cloudtrail")


def test_one_statement_only(cfg) -> None:
    with pytest.raises(QueryError, match="exactly one"):
        query.run(cfg, "SELECT 1; SELECT 2")


def test_other_schemas_are_refused(cfg) -> None:
    with pytest.raises(QueryError, match="unknown schema"):
        query.run(cfg, "SELECT * FROM other.aws_cloudtrail")
