"""Table schemas from declared fields: dotted ECS names become nested Arrow structs.

Every tarn table carries the same core columns (`ts`, `event.original`, `related.*`,
`tarn.*`) in front of the log source's own fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tarn.exceptions import TarnError

TS = pa.timestamp("us", tz="UTC")

_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "keyword": pa.string(),
    "ip": pa.string(),
    "json": pa.string(),  # kept as JSON text: shapes that vary per record
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "timestamp": TS,
    "date": pa.date32(),
}
SCALAR_TYPES = tuple(sorted(_SCALARS))


@dataclass(frozen=True)
class Field:
    name: str  # dotted path, e.g. "source.ip"
    type: str  # a scalar name or "list<scalar>"
    description: str = ""

    def arrow_type(self) -> pa.DataType:
        t = self.type.strip()
        if t.startswith("list<") and t.endswith(">"):
            inner = t[5:-1].strip()
            if inner not in _SCALARS:
                raise TarnError(
                    f"field {self.name}: unknown list item type {inner!r}; known: {', '.join(sorted(_SCALARS))}"
                )
            return pa.list_(_SCALARS[inner])
        if t not in _SCALARS:
            raise TarnError(
                f"field {self.name}: unknown type {t!r}; known: {', '.join(sorted(_SCALARS))} and list<...>"
            )
        return _SCALARS[t]


CORE_FIELDS: tuple[Field, ...] = (
    Field("ts", "timestamp", "When the event happened (UTC)."),
    Field("event.original", "string", "The raw record as received."),
    Field("related.ip", "list<ip>", "All IPs seen on the event."),
    Field("related.user", "list<keyword>", "All user names or ids seen on the event."),
    Field("related.hosts", "list<keyword>", "All host names seen on the event."),
    Field("related.hash", "list<keyword>", "All hashes seen on the event."),
    Field("tarn.log_source", "keyword", "The log source that produced the row."),
    Field("tarn.table", "keyword", "The table the row belongs to."),
    Field("tarn.ingest_id", "keyword", "The ingest (raw object) the row came from."),
)


def arrow_schema(fields: Iterable[Field], docs: bool = False) -> pa.Schema:
    """Nest dotted fields into structs, keeping the order in which names first appear.

    With `docs`, each leaf carries its description as Arrow field metadata (`doc`), which
    pyiceberg turns into the Iceberg column's doc.
    """
    tree: dict[str, Any] = {}
    described: dict[str, str] = {}
    for f in fields:
        if f.description:
            described.setdefault(f.name, f.description)
        parts = f.name.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TarnError(
                    f"field {f.name}: {part} is declared both as a value and as a group"
                )
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise TarnError(f"field {f.name} is declared both as a value and as a group")
        node.setdefault(parts[-1], f.arrow_type())

    def build(node: dict[str, Any], prefix: str) -> list[pa.Field]:
        out = []
        for name, value in node.items():
            path = f"{prefix}{name}"
            typ = pa.struct(build(value, f"{path}.")) if isinstance(value, dict) else value
            doc = described.get(path) if docs and not isinstance(value, dict) else None
            out.append(
                pa.field(
                    name,
                    typ,
                    nullable=name != "ts" or node is not tree,
                    metadata={"doc": doc} if doc else None,
                )
            )
        return out

    return pa.schema(build(tree, ""))


def leaf_types(schema: pa.Schema | pa.StructType) -> dict[str, pa.DataType]:
    """Dotted leaf path -> Arrow type, for every non-struct column of `schema`."""
    out: dict[str, pa.DataType] = {}

    def walk(fields: Iterable[pa.Field], prefix: str) -> None:
        for f in fields:
            if pa.types.is_struct(f.type):
                walk(list(f.type), f"{prefix}{f.name}.")
            else:
                out[f"{prefix}{f.name}"] = f.type

    walk(list(schema), "")
    return out


def merge_fields(*groups: Sequence[Field]) -> list[Field]:
    seen: dict[str, Field] = {}
    for group in groups:
        for f in group:
            seen.setdefault(f.name, f)
    return list(seen.values())


SIDELINE_FIELDS: tuple[Field, ...] = (
    Field("ts", "timestamp", "When the record was sidelined."),
    Field("tarn.log_source", "keyword"),
    Field("tarn.table", "keyword"),
    Field("tarn.ingest_id", "keyword"),
    Field("stage", "keyword", "parse, transform or validate."),
    Field("reason", "string", "Why the record was sidelined."),
    Field("raw", "string", "The raw line or record, as received."),
    Field("position", "long", "The record's position in its object."),
)

SIDELINE_SCHEMA = arrow_schema(SIDELINE_FIELDS)
