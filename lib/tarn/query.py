"""SQL over the lake: Trino when configured, DuckDB over pyiceberg scans otherwise.

Queries are written in Trino's dialect either way; DuckDB gets them transpiled by sqlglot.
Table names may be bare (`aws_cloudtrail`), schema-qualified (`tarn.aws_cloudtrail`) or
fully qualified (`iceberg.tarn.aws_cloudtrail`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from tarn.config import Config
from tarn.exceptions import QueryError


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    engine: str

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _parse(sql: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(sql, read="trino")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise QueryError(f"syntax error{where}: {first.get('description', exc)}") from exc
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise QueryError(f"send exactly one SQL statement, got {len(statements)}")
    return statements[0]  # type: ignore[return-value]


def _lake_tables(tree: exp.Expression) -> list[exp.Table]:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return [t for t in tree.find_all(exp.Table) if t.name and t.name not in ctes]


def run_duckdb(cfg: Config, sql: str, lake: Any = None) -> Result:
    from pyiceberg.exceptions import NoSuchTableError

    from tarn.lake import Lake

    lake = lake or Lake(cfg)

    def load(name: str) -> pa.Table:
        try:
            reader = lake.load(name).scan().to_arrow_batch_reader()
        except NoSuchTableError:
            known = ", ".join(lake.table_names()) or "none yet"
            raise QueryError(f"table {name!r} does not exist; tables: {known}") from None
        return pa.Table.from_batches(list(reader), schema=reader.schema)

    return run_duckdb_tables(sql, load, cfg.catalog.namespace)


def run_duckdb_tables(sql: str, load: Callable[[str], pa.Table], namespace: str = "tarn") -> Result:
    """Trino-dialect SQL on DuckDB, each table name resolved to Arrow data by `load`."""
    import duckdb

    tree = _parse(sql)
    con = duckdb.connect()
    try:
        registered: dict[str, str] = {}
        for node in _lake_tables(tree):
            schema = node.db
            if schema and schema != namespace:
                raise QueryError(f"unknown schema {schema!r}: tarn's tables are in {namespace!r}")
            name = node.name
            if name not in registered:
                alias = f"__tarn_{len(registered)}"
                con.register(alias, load(name))
                registered[name] = alias
            node.set("this", exp.to_identifier(registered[name]))
            node.set("db", None)
            node.set("catalog", None)
            if not node.alias:
                node.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        duck_sql = tree.sql(dialect="duckdb")
        try:
            cur = con.execute(duck_sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB rejected the query: {exc}") from exc
        return Result(columns, rows, "duckdb")
    finally:
        con.close()


def run_trino(cfg: Config, sql: str) -> Result:
    import trino

    t = cfg.query.trino
    conn = trino.dbapi.connect(
        host=t.host,
        port=t.port,
        user=t.user,
        catalog=t.catalog,
        schema=cfg.catalog.namespace,
        http_scheme=t.http_scheme,
    )
    try:
        cur = conn.cursor()
        try:
            for attempt in range(10):
                try:
                    cur.execute(sql)
                    rows = [tuple(r) for r in cur.fetchall()]
                    break
                except trino.exceptions.TrinoQueryError as exc:
                    # A node that is (re)registering: transient, worth a short wait.
                    if exc.error_name != "NO_NODES_AVAILABLE" or attempt == 9:
                        raise
                    time.sleep(0.5 * (attempt + 1))
        except trino.exceptions.TrinoUserError as exc:
            loc = exc.error_location
            where = f" (line {loc[0]}, column {loc[1]})" if loc else ""
            raise QueryError(f"Trino rejected the query{where}: {exc.message}") from exc
        except trino.exceptions.TrinoQueryError as exc:
            raise QueryError(f"Trino failed: {exc.message}") from exc
        return Result([d[0] for d in cur.description or []], rows, "trino")
    finally:
        conn.close()


def run(cfg: Config, sql: str, engine: str | None = None) -> Result:
    if (engine or cfg.query.engine) == "trino":
        return run_trino(cfg, sql)
    return run_duckdb(cfg, sql)
