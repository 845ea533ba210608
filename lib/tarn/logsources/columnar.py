"""Columnar transforms: a log source's transform applied to a batch of records at once.

`transform(record)` is the definition of a log source's rows. A source may also ship a batch
version of it, which the transformer runs on up to SUB_BATCH records at a time with Arrow
compute instead of Python per record:

    from tarn.logsources import columnar as col

    @col.columnar(raw={"time": "string", "src": "string", "user.name": "string"})
    def transform_columns(batch: col.Batch) -> dict[str, object]:
        return {
            "ts": col.timestamps(batch["time"]),
            "source.ip": col.ips(batch["src"]),
            "user.name": batch["user.name"],
            "event.kind": "event",
        }

The contract:

- `raw` declares the raw fields the batch function reads, dotted, with a type: `string`
  (`keyword`, `ip`), `boolean`, `long`, `double`, `list<...>` of those, or `json` (the value
  whole, any shape: `batch.json(path)` is its JSON text as `json_text` writes it, and fields
  declared under it are picked out where it is an object). Records are read into exactly
  these fields with msgspec, strictly: a group must be an object, a string a string, a long
  an integer (a double may be an integer). A record that does not read so is not in the
  batch: it goes through `transform(record)`. What is not declared is not even built, unless
  `"*": "json"` is declared: then `batch.values("*")` gives each record's other top-level
  keys as a dict, in record order (for a column that keeps "the rest of the record").
- `batch[path]` is an Arrow array of the values at `path` (null where a record or a group on
  the way lacks it), `batch.present(path)` says where the value is an object,
  `batch.has(path)` where the key is there at all (null or not), and `batch.values(path)`
  gives the Python values for what Arrow cannot do.
- The function returns, per dotted column of the table, an Arrow array with one value per
  record, or one Python value for all. `ts` is required. A struct's path mapped to a boolean
  array says per record whether the struct is there; otherwise a struct is there when any
  column under it is returned. `_row_path` (a boolean array) sends records back to
  `transform(record)`: cases the batch function does not decide itself.
- A record whose `ts` the function leaves null, or whose other timestamp/date columns do not
  read, also goes through `transform(record)`, which then lands it or sidelines it with its
  reason. So the batch function must agree with `transform` on every record it keeps; the
  goldens and the equivalence tests check that it does.
- Then, as for every row: `event.original`, `related.*` and `tarn.*` are filled, and the
  columns are cast to the table's types. Only sources with a default table (no `table_by`)
  use a batch function; their rows go to that table.

The helpers below (`timestamps`, `ips`, `to_bools`, `either`, `truthy`, `lookup`,
`per_value`, `unique_values`) each give what the row helper of the same meaning gives per record.

Nothing here can lose a record: when the batch function raises (a bug), the batch goes
record by record through `transform` and a warning is logged once per source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Annotated, Any, TypedDict

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tarn.logsources import _syslog
from tarn.logsources._parse import SYSLOG_LINE, UNDECODED, Fields, ZeekRow, eager, safely
from tarn.logsources._schema import TS, Field, arrow_schema
from tarn.logsources._syslog import decode_line as syslog_line
from tarn.logsources.helpers import JSON_ENCODER, ip_or_none, json_text, parse_ts, to_bool

__all__ = [
    "ROW_PATH",
    "Batch",
    "ColumnarError",
    "ColumnarTransform",
    "columnar",
    "either",
    "first",
    "ips",
    "json_texts",
    "lookup",
    "per_value",
    "per_value_checked",
    "timestamps",
    "timestamps_checked",
    "to_bools",
    "truthy",
    "unique_values",
]

log = logging.getLogger("tarn.logsources.columnar")

RAW_TYPES = ("string", "keyword", "ip", "boolean", "long", "double")
ROW_PATH = "_row_path"
REST = "*"  # in raw=: the record's other top-level keys


class ColumnarError(Exception):
    """The batch function's output cannot be used (a bug in it); the batch goes row by row."""


# -- declaring ----------------------------------------------------------------------------------
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_PYTHON: dict[str, Any] = {
    "string": str,
    "keyword": str,
    "ip": str,
    "boolean": bool,
    "long": _INT64,
    "double": float,
}


@dataclass(frozen=True, eq=False)
class ColumnarTransform:
    """A batch function and how records are read for it.

    Records are read with msgspec into a TypedDict of the declared fields: strictly (a group
    must be an object, a string a string, a long an integer; a double may be an integer) and
    without building what is not declared. `json` values are kept whole (Any); fields
    declared under one are picked out of it where it is an object.
    """

    fn: Callable[[Batch], Mapping[str, Any]]
    record_type: Any  # the TypedDict
    struct: pa.StructType  # the declared fields outside json values, as Arrow
    json_fields: tuple[tuple[tuple[str, ...], pa.DataType], ...]  # fields under a json value
    decoder: msgspec.json.Decoder = field(repr=False)
    json_nodes: tuple[tuple[str, ...], ...] = ()  # raw values read whole
    rest: bool = False  # "*": the undeclared top-level keys too, as batch.values("*")
    top: frozenset[str] = frozenset()  # the declared top-level keys

    def __call__(self, batch: Batch) -> Mapping[str, Any]:
        return self.fn(batch)

    def reads_text(self, name: str) -> bool:
        """Whether the top-level raw field `name` is declared as text."""
        index = self.struct.get_field_index(name)
        return index >= 0 and pa.types.is_string(self.struct.field(index).type)


def columnar(raw: Mapping[str, str]) -> Callable[[Callable[..., Any]], ColumnarTransform]:
    """Declare `transform_columns(batch)` with the raw fields it reads (see the module doc)."""
    raw = dict(raw)
    rest = raw.pop(REST, None)
    if rest is not None and rest.strip() != "json":
        raise ValueError(f"raw field {REST}: the rest of a record is read as json, not {rest!r}")
    json_nodes = sorted(tuple(n.split(".")) for n, t in raw.items() if t.strip() == "json")
    for path in json_nodes:
        if any(path[:i] in json_nodes for i in range(1, len(path))):
            raise ValueError(
                f"raw field {'.'.join(path)}: a json value holds it already; declare its "
                "fields with their types instead"
            )
    typed, under_json = [], []
    for name, type_ in raw.items():
        t = type_.strip()
        if t == "json":
            continue
        inner = t[5:-1].strip() if t.startswith("list<") and t.endswith(">") else t
        if inner not in RAW_TYPES:
            raise ValueError(
                f"raw field {name}: type {type_!r} cannot be read in a batch; use one of "
                f"{', '.join(RAW_TYPES)}, list<...> of them, or json"
            )
        path = tuple(name.split("."))
        if any(path[:i] in json_nodes for i in range(1, len(path))):
            under_json.append((path, Field(name, t).arrow_type()))
        else:
            typed.append(Field(name, t))
    struct = pa.struct(list(arrow_schema(typed))) if typed else pa.struct([])
    tree: dict[str, Any] = {}
    for f in typed:
        *groups, leaf = f.name.split(".")
        node = tree
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = f.type
    for path in json_nodes:
        node = tree
        for g in path[:-1]:
            node = node.setdefault(g, {})
        node[path[-1]] = "json"
    record_type = _typed_dict("Raw", tree)

    top = frozenset(f.name for f in struct) | {p[0] for p in json_nodes}

    def wrap(fn: Callable[..., Any]) -> ColumnarTransform:
        return ColumnarTransform(
            fn,
            record_type,
            struct,
            tuple(under_json),
            msgspec.json.Decoder(record_type),
            tuple(json_nodes),
            rest is not None,
            top,
        )

    return wrap


_TYPED_DICT: Any = TypedDict  # called with field names known only at run time


def _typed_dict(name: str, tree: Mapping[str, Any]) -> Any:
    """The TypedDict msgspec reads records into (every key optional, every value nullable)."""
    fields: dict[str, Any] = {}
    for i, (key, spec) in enumerate(tree.items()):
        value: Any
        if spec == "json":
            value = Any
        elif isinstance(spec, dict):
            value = _typed_dict(f"{name}_{i}", spec)
        elif spec.startswith("list<"):
            item: Any = _PYTHON[spec[5:-1].strip()]
            value = list.__class_getitem__(item)
        else:
            value = _PYTHON[spec]
        fields[key] = value if value is Any else value | None
    return _TYPED_DICT(name, fields, total=False)


# -- the batch a function sees ---------------------------------------------------------------------
class Batch:
    """The records of one batch, read as declared: typed columns by dotted path."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]],
        raw: pa.StructArray,
        columns: Mapping[str, pa.Array] | None = None,
        fields: Mapping[str, list[Any]] | None = None,
    ) -> None:
        self._records = records  # or how to make them, when only columns were read
        # per record, the table table_by chose (null where none); None: one table for all
        self.table: pa.Array | None = None
        self._raw = raw
        self._columns = dict(columns or {})
        self._values: dict[str, list[Any]] = {}
        self._present: dict[str, pa.Array] = {}
        # field(): the rest's values by key; all of its keys where the reader read by column
        self._fields = dict(fields or {})
        self._all_fields = fields is not None

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def records(self) -> Sequence[dict[str, Any]]:
        """The declared fields of each record as Python values (json values whole)."""
        if callable(self._records):
            self._records = self._records()
        return self._records

    def __getitem__(self, path: str) -> pa.Array:
        """The raw values at `path` (null where the record or a group on the way lacks it)."""
        found = self._columns.get(path)
        if found is None:
            try:
                found = pc.struct_field(self._raw, path.split("."))
            except (KeyError, pa.ArrowInvalid, IndexError) as exc:
                raise ColumnarError(f"raw field {path!r} is not declared in raw=") from exc
            self._columns[path] = found
        return found

    def present(self, path: str) -> pa.Array:
        """Per record: the value at `path` is an object (a group, or a json value that is one)."""
        found = self._present.get(path)
        if found is None:
            if _has_group(self._raw.type, path):
                found = pc.is_valid(self[path])
            else:
                found = pa.array([type(v) is dict for v in self.values(path)], pa.bool_())
            self._present[path] = found
        return found

    def has(self, path: str) -> pa.Array:
        """Per record: the key at `path` is there (with any value, null too), as `in` says
        on the record: `batch.records` hold only the keys a record has."""
        parent, _, key = path.rpartition(".")
        nodes = self.values(parent) if parent else self.records
        return pa.array([type(n) is dict and key in n for n in nodes], pa.bool_())

    def json(self, path: str) -> pa.Array:
        """The JSON text of the value at `path` (any shape), null where there is none."""
        return json_texts(self.values(path))

    def field(self, key: str) -> list[Any]:
        """With `"*"` in raw=: the value of the top-level key `key` of the rest of each record
        (None where it lacks it). `key` is one name, dots and all (Zeek's "id.orig_h")."""
        found = self._fields.get(key)
        if found is None:
            if self._all_fields:
                found = [None] * len(self)
            else:
                found = [r.get(key) if type(r) is dict else None for r in self._rest()]
            self._fields[key] = found
        return found

    def fields(
        self, keys: Sequence[str], rows: Sequence[int] | None = None
    ) -> dict[str, list[Any]]:
        """field() of each key, for all records or those at the indices `rows`; one pass over
        the records for the keys they all have."""
        if rows is None:
            wanted = [k for k in keys if k not in self._fields]
            if len(wanted) > 1 and not self._all_fields:
                self._fields.update(_by_key(self._rest(), wanted))
            return {k: self.field(k) for k in keys}
        if self._all_fields or all(k in self._fields for k in keys):
            at = list(rows)
            return {k: [values[j] for j in at] for k, values in self.fields(keys).items()}
        rest = self._rest()
        records = [rest[j] for j in rows]
        found = _by_key(records, keys)
        for k in keys:
            if k not in found:
                found[k] = [r.get(k) if type(r) is dict else None for r in records]
        return {k: found[k] for k in keys}

    def _rest(self) -> list[Any]:
        if self.records and REST not in self.records[0]:
            raise ColumnarError('field() reads the rest of a record: add "*": "json" to raw=')
        return self.values(REST)

    def values(self, path: str) -> list[Any]:
        """The Python values at `path`, one per record (None where there is none)."""
        found = self._values.get(path)
        if found is None:
            parent, _, key = path.rpartition(".")
            if not parent:
                found = [r.get(key) for r in self.records]
            else:
                found = [v.get(key) if type(v) is dict else None for v in self.values(parent)]
            self._values[path] = found
        return found


def _by_key(records: Sequence[Any], keys: Sequence[str]) -> dict[str, list[Any]]:
    """The values of those of `keys` that the first record has, when every record has them
    (one pass, in C); {} otherwise."""
    first = records[0] if records else None
    common = tuple(k for k in keys if type(first) is dict and k in first)
    if len(common) < 2:
        return {}
    try:
        rows = list(map(itemgetter(*common), records))
    except (KeyError, TypeError):  # a record without one of them, or not a dict
        return {}
    return dict(zip(common, map(list, zip(*rows, strict=True)), strict=True))


def _has_group(struct: pa.DataType, path: str) -> bool:
    node = struct
    for part in path.split("."):
        if not pa.types.is_struct(node) or node.get_field_index(part) < 0:
            return False
        node = node.field(part).type
    return pa.types.is_struct(node)


# -- helpers for batch functions: each agrees with the row helper of the same name ----------------
def per_value(fn: Callable[[Any], Any], values: pa.Array, type_: pa.DataType) -> pa.Array:
    """`fn` applied to each distinct value, nulls left null: exactly what calling it per record
    gives, at the cost of the distinct values only."""
    encoded = pc.dictionary_encode(values)
    results = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], type_)
    return results.take(encoded.indices)


_RAISES = (ValueError, TypeError, OverflowError, OSError, ArithmeticError, LookupError)


def per_value_checked(
    fn: Callable[[Any], Any], values: pa.Array, type_: pa.DataType
) -> tuple[pa.Array, pa.Array]:
    """per_value, and per record whether `fn` raised or gave what `type_` cannot hold (null
    there): where the row's transform would fail, for ROW_PATH."""
    encoded = pc.dictionary_encode(values)
    results: list[Any] = []
    failed: list[bool] = []
    for value in encoded.dictionary.to_pylist():
        try:
            result = fn(value)
            pa.scalar(result, type_)
        except (*_RAISES, pa.ArrowInvalid, pa.ArrowTypeError):
            result, bad = None, True
        else:
            bad = False
        results.append(result)
        failed.append(bad)
    indices = encoded.indices
    return (
        pa.array(results, type_).take(indices),
        pc.fill_null(pa.array(failed, pa.bool_()).take(indices), False),
    )


def json_texts(values: Iterable[Any]) -> pa.Array:
    """helpers.json_text per value, as a string array."""
    encode = JSON_ENCODER.encode
    texts: list[bytes | str | None] = []
    for value in values:
        if value is None:
            texts.append(None)
            continue
        try:
            texts.append(encode(value))
        except (TypeError, ValueError, UnicodeError, OverflowError):
            texts.append(json_text(value))
    return pa.array(texts, pa.string())


def to_bools(values: pa.Array) -> pa.Array:
    """helpers.to_bool per value."""
    if pa.types.is_boolean(values.type):
        return values
    return per_value(to_bool, values, pa.bool_())


def first(lists: pa.Array) -> pa.Array:
    """`values[0] if values else None` per list (null for a null list too)."""
    offsets = lists.offsets.to_numpy()  # into lists.values, which ignores a slice's offset
    none = (offsets[1:] == offsets[:-1]) | _numpy(lists.is_null())
    return lists.values.take(pa.array(offsets[:-1], mask=none))


def ips(values: pa.Array) -> pa.Array:
    """helpers.ip_or_none per value."""
    return per_value(ip_or_none, values, pa.string())


def lookup(
    values: pa.Array, table: Mapping[Any, Any], default: Any, type_: pa.DataType
) -> pa.Array:
    """`table.get(value, default)` per value (nulls stay null)."""
    return per_value(lambda v: table.get(v, default), values, type_)


def truthy(values: pa.Array) -> pa.Array:
    """Python truthiness per value: not null, and not "", 0 or False."""
    t = values.type
    if pa.types.is_boolean(t):
        return pc.fill_null(values, False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.fill_null(pc.greater(pc.binary_length(values), 0), False)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pc.fill_null(pc.not_equal(values, 0), False)
    raise ColumnarError(f"truthy() does not read {t}")


def unique_values(*columns: pa.Array) -> pa.Array:
    """helpers.unique per record over the values of `columns` (text or lists of text), in
    order: a list<string> array, for related.* values of a transform's own."""
    if not columns:
        raise ColumnarError("unique_values() needs at least one column")
    return _related(len(columns[0]), list(columns))


def either(first: pa.Array, second: pa.Array) -> pa.Array:
    """Python's `first or second` per value."""
    return pc.if_else(truthy(first), first, second)


# ISO 8601 in UTC ("Z" or "+00:00"), which Arrow's cast reads as parse_ts does once a fraction
# is cut to microseconds (datetime.fromisoformat drops the digits after the sixth).
_ISO_Z = r"^[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)$"
_NANOS = r"(\.[0-9]{6})[0-9]+(Z|\+00:00)$"


def timestamps(values: pa.Array, reader: Callable[[Any], Any] = parse_ts) -> pa.Array:
    """`reader` (helpers.parse_ts, or a row helper like iso_ts_or_none) per value, null where
    it raises or gives None (such records then go through `transform`, which says why).
    ISO 8601 UTC text ("...Z") is cast by Arrow: `reader` must read it as
    datetime.fromisoformat does (both helpers do)."""
    return timestamps_checked(values, reader)[0]


def timestamps_checked(
    values: pa.Array, reader: Callable[[Any], Any] = parse_ts
) -> tuple[pa.Array, pa.Array]:
    """timestamps, and per record whether `reader` raised (not just gave None): for a row
    transform that falls back to another field when a time is missing but fails when it
    raises."""
    none = pa.repeat(False, len(values))
    if pa.types.is_timestamp(values.type):
        ts = values.cast(TS) if values.type.tz else pc.assume_timezone(values, "UTC").cast(TS)
        return ts, none
    if not pa.types.is_string(values.type):
        return per_value_checked(reader, values, TS)
    common = pc.fill_null(pc.match_substring_regex(values, _ISO_Z), False)
    try:
        cut = pc.replace_substring_regex(values, _NANOS, r"\1\2")
        fast = pc.if_else(common, cut, None).cast(TS)
    except pa.ArrowInvalid:  # e.g. 30 February: the reader says why, per value
        return per_value_checked(reader, values, TS)
    other = pc.invert(common)
    if not pc.any(other).as_py():
        return fast, none
    slow, failed = per_value_checked(reader, values.filter(other), TS)
    return (
        pc.replace_with_mask(fast, other, slow),
        pc.replace_with_mask(none, other, failed),
    )


# -- running a batch ---------------------------------------------------------------------------------
_warned: set[str] = set()


def warn_once(source: str, exc: BaseException) -> None:
    if source not in _warned:
        _warned.add(source)
        log.warning(
            "log source %s: its batch transform failed (%s: %s); such batches go record by "
            "record through transform(record), which is slower but gives the same rows",
            source,
            type(exc).__name__,
            exc,
        )


_EXACT: dict[Any, tuple[type, ...]] = {
    pa.string(): (str,),
    pa.bool_(): (bool,),
    pa.int64(): (int,),
    pa.float64(): (float, int),
}


def _fits(value: Any, type_: pa.DataType) -> bool:
    """`value` is what msgspec would have accepted for a declared field of this type."""
    if pa.types.is_list(type_):
        return type(value) is list and all(x is None or _fits(x, type_.value_type) for x in value)
    if type(value) not in _EXACT[type_]:
        return False
    return type(value) is not int or -(2**63) <= value < 2**63


def read_records(
    plan: ColumnarTransform, records: Sequence[Any], texts: Sequence[str]
) -> tuple[Batch, list[int]]:
    """The batch of the records that read as declared, and their indices; the others go
    through `transform`. A record is UNDECODED (then its text is decoded, typed) or a value
    a parser decoded (then it is checked and converted)."""
    if records and all(type(r) is Fields or isinstance(r, Exception) for r in records):
        by_column = _read_fields(plan, records)
        if by_column is not None:
            return by_column
    if records and all(type(r) is ZeekRow or isinstance(r, Exception) for r in records):
        by_column = _read_zeek(plan, records)
        if by_column is not None:
            return by_column
    if any(r is SYSLOG_LINE for r in records):
        by_column = _read_syslog(plan, records, texts)
        if by_column is not None:
            return by_column
    decode = plan.decoder.decode
    convert = msgspec.convert
    top = plan.top
    typed: list[dict[str, Any]] = []
    kept: list[int] = []
    for i, record in enumerate(records):
        try:
            if record is UNDECODED:
                row = decode(texts[i])
                if plan.rest:
                    row[REST] = {
                        k: _VALUE.decode(v)
                        for k, v in _KEYS.decode(texts[i]).items()
                        if k not in top
                    }
            else:
                record = eager(record, texts[i])
                if type(record) is not dict:
                    continue
                row = convert(record, plan.record_type)
                if plan.rest:
                    row[REST] = {k: v for k, v in record.items() if k not in top}
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError):
            continue
        typed.append(row)
        kept.append(i)
    try:
        raw = pa.array(typed, type=plan.struct)
    except _CONVERT_ERRORS:  # rare (text msgspec takes and Arrow does not): leave those out
        good = [j for j, r in enumerate(typed) if _converts(r, plan.struct)]
        typed = [typed[j] for j in good]
        kept = [kept[j] for j in good]
        raw = pa.array(typed, type=plan.struct)
    batch = Batch(typed, raw)
    if not plan.json_fields:
        return batch, kept
    # fields under json values: picked out in Python, with the types msgspec would demand
    bad: set[int] = set()
    picked = {}
    for path, type_ in plan.json_fields:
        name = ".".join(path)
        values = batch.values(name)
        if type_ == pa.string():
            bad.update(j for j, v in enumerate(values) if v is not None and type(v) is not str)
        else:
            bad.update(j for j, v in enumerate(values) if v is not None and not _fits(v, type_))
        picked[name] = (values, type_)
    if bad:
        good = [j for j in range(len(typed)) if j not in bad]
        batch = Batch([typed[j] for j in good], raw.take(pa.array(good, pa.int64())))
        kept = [kept[j] for j in good]
        picked = {k: ([v[j] for j in good], t) for k, (v, t) in picked.items()}
    for name, (values, type_) in picked.items():
        batch._columns[name] = pa.array(values, type_)
    return batch, kept


def _read_fields(plan: ColumnarTransform, records: Sequence[Any]) -> tuple[Batch, list[int]] | None:
    """Delimited rows under one header, read column by column (no dict per row). None where
    that does not apply: the rows are then read one by one like any record."""
    kept = [i for i, r in enumerate(records) if type(r) is Fields]
    if not kept:
        return None
    header = records[kept[0]].header
    if any(records[i].header is not header for i in kept) or plan.json_fields:
        return None
    if not all(pa.types.is_string(f.type) for f in plan.struct):
        return None  # a delimited field is text: records would not read as declared
    where = {name: j for j, name in enumerate(header)}  # a repeated name: the last, as dicts
    rows = [records[i].values for i in kept]
    by_column = list(zip(*rows, strict=True))  # one tuple of values per column, built in C
    columns = []
    for f in plan.struct:
        j = where.get(f.name)
        if j is None:
            columns.append(pa.nulls(len(rows), pa.string()))
            continue
        values = pa.array(by_column[j], pa.string())
        columns.append(pc.if_else(pc.equal(values, ""), None, values))
    raw = pa.StructArray.from_arrays(columns, fields=list(plan.struct))
    names = [f.name for f in plan.struct if f.name in where]
    names += [p[0] for p in plan.json_nodes if len(p) == 1 and p[0] in where]

    others = [name for name in where if name not in plan.top] if plan.rest else None

    def typed() -> list[dict[str, Any]]:
        out = [{name: (row[where[name]] or None) for name in names} for row in rows]
        if others is not None:
            for record, row in zip(out, rows, strict=True):
                record[REST] = {name: (row[where[name]] or None) for name in others}
        return out

    return Batch(typed, raw), kept


def _read_zeek(plan: ColumnarTransform, records: Sequence[Any]) -> tuple[Batch, list[int]] | None:
    """Zeek TSV lines read column by column (no dict per line), each run of lines under one
    header on its own. None where that does not apply: the lines are then read one by one
    like any record."""
    kept = [i for i, r in enumerate(records) if type(r) is ZeekRow]
    if not kept or plan.json_fields or plan.json_nodes:
        return None
    runs: list[tuple[Any, list[int]]] = []  # (layout, indices), in record order
    for i in kept:
        layout = records[i].layout
        if runs and runs[-1][0] is layout:
            runs[-1][1].append(i)
        else:
            runs.append((layout, [i]))
    for layout in {id(layout): layout for layout, _ in runs}.values():
        sets = {name for name, c in zip(layout.fields, layout.containers, strict=True) if c}
        if any(not pa.types.is_string(f.type) or f.name in sets for f in plan.struct):
            return None  # a field that is a set, or declared other than text: not as declared
    parts = [(len(at), layout.columns([records[i].values for i in at])) for layout, at in runs]
    n = len(kept)

    def merged(name: str) -> list[Any]:
        if len(parts) == 1:
            return parts[0][1].get(name) or [None] * n
        out: list[Any] = []
        for size, columns in parts:
            out.extend(columns.get(name) or [None] * size)
        return out

    names = list({name: None for _, columns in parts for name in columns})
    raw = pa.StructArray.from_arrays(
        [pa.array(merged(f.name), pa.string()) for f in plan.struct], fields=list(plan.struct)
    )
    others = {name: merged(name) for name in names if name not in plan.top} if plan.rest else None

    def typed() -> list[dict[str, Any]]:  # the records as the dict path reads them
        out: list[dict[str, Any]] = []
        for size, columns in parts:
            rows: list[dict[str, Any]] = [{} for _ in range(size)]
            rests: list[dict[str, Any]] = [{} for _ in range(size)]
            for name, values in columns.items():
                for row, value in zip(rows if name in plan.top else rests, values, strict=True):
                    row[name] = value
            if plan.rest:
                for row, rest in zip(rows, rests, strict=True):
                    row[REST] = rest
            out.extend(rows)
        return out

    return Batch(typed, raw, fields=others), kept


_SYSLOG_TYPES = {
    **dict.fromkeys(_syslog.FIELDS, pa.string()),
    "facility": pa.int64(),
    "severity": pa.int64(),
    "format": pa.string(),
}


def _read_syslog(
    plan: ColumnarTransform, records: Sequence[Any], texts: Sequence[str]
) -> tuple[Batch, list[int]] | None:
    """Syslog lines read by column: the common shapes by Arrow's regex engine, the others by
    the line parser. None where the declared fields are not the parser's own (then the lines
    are parsed one by one and read like any record)."""
    if plan.rest or plan.json_fields or any(p != ("structured_data",) for p in plan.json_nodes):
        return None
    if any(not _SYSLOG_TYPES.get(f.name, pa.null()).equals(f.type) for f in plan.struct):
        return None
    at = [i for i, r in enumerate(records) if r is SYSLOG_LINE]
    columns, fast = _syslog.read_columns([texts[i] for i in at])
    slow: dict[int, Any] = {
        j: safely(syslog_line, texts[at[j]]) for j in np.flatnonzero(~_numpy(fast)).tolist()
    }
    read = {j for j, r in slow.items() if isinstance(r, dict)}  # the others are ParseErrors
    if read:
        where = pa.array([j in read for j in range(len(at))], pa.bool_())
        order = sorted(read)
        columns = {
            name: pc.replace_with_mask(
                values, where, pa.array([slow[j][name] for j in order], values.type)
            )
            for name, values in columns.items()
        }
    local = [j for j in range(len(at)) if j not in slow or j in read]
    index = pa.array(local, pa.int64())
    columns = {name: values.take(index) for name, values in columns.items()}
    structured = [slow[j]["structured_data"] if j in read else None for j in local]
    raw = pa.StructArray.from_arrays(
        [columns[f.name] for f in plan.struct], fields=list(plan.struct)
    )

    def typed() -> list[dict[str, Any]]:
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*(c.to_pylist() for c in columns.values()), strict=True)
        ]
        for row, sd in zip(rows, structured, strict=True):
            row["structured_data"] = sd
        return rows

    batch = Batch(typed, raw)
    batch._values["structured_data"] = structured  # without making every record a dict
    return batch, [at[j] for j in local]


# the top-level keys of a record with their raw text, and a value of any shape (as decode_line
# reads it when msgspec takes the whole record, which the typed read has just shown)
_KEYS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_VALUE = msgspec.json.Decoder()

_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


def _converts(record: dict[str, Any], struct: pa.StructType) -> bool:
    try:
        pa.array([record], type=struct)
    except _CONVERT_ERRORS:
        return False
    return True


def _fitted(value: Any, n: int, type_: pa.DataType, path: str) -> tuple[pa.Array, pa.Array | None]:
    """The column as `type_`, and where a value does not fit it (None: all fit). A record
    with a value that does not fit goes through transform(), whose row is then sidelined
    with the reason, as rows are."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if not isinstance(value, pa.Array) or value.type.equals(type_):
        return _leaf_array(value, n, type_, path), None
    if len(value) != n:
        raise ColumnarError(f"{path}: {len(value)} values for {n} records")
    try:
        return value.cast(type_), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if _numeric(value.type) and _numeric(type_):
        forced = value.cast(type_, safe=False)
        kept = pc.fill_null(pc.equal(forced.cast(value.type, safe=False), value), True)
        return pc.if_else(kept, forced, None), pc.invert(kept)
    raise ColumnarError(f"{path}: {value.type} does not cast to {type_}")


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _leaf_array(value: Any, n: int, type_: pa.DataType, path: str) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        if len(value) != n:
            raise ColumnarError(f"{path}: {len(value)} values for {n} records")
        if value.type.equals(type_):
            return value
        try:
            return value.cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ColumnarError(f"{path}: {value.type} does not cast to {type_}: {exc}") from exc
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    try:
        return pa.repeat(pa.scalar(value, type_), n)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise ColumnarError(f"{path}: {value!r} is not a {type_}: {exc}") from exc


def _related(n: int, columns: list[pa.Array]) -> pa.Array:
    """Per record, the distinct non-empty values of `columns` in order (helpers.unique)."""
    if not columns:
        return pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string())
        )
    if any(pa.types.is_list(c.type) or pa.types.is_large_list(c.type) for c in columns):
        return _related_lists(n, columns)
    # Scalar columns: a value is kept if it is there, not empty and not one of the row's
    # earlier values; then the kept values, row by row, are the lists.
    texts = [c.cast(pa.string()) for c in columns]
    keeps = []
    for j, col in enumerate(texts):
        keep = pc.fill_null(pc.greater(pc.binary_length(col), 0), False)
        for earlier in texts[:j]:
            keep = pc.and_(keep, pc.invert(pc.fill_null(pc.equal(col, earlier), False)))
        keeps.append(keep.to_numpy(zero_copy_only=False))
    k = len(texts)
    keep_rows = np.stack(keeps, axis=1)  # n x k
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()  # row-major
    chosen = order[keep_rows.ravel()]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep_rows.sum(axis=1), out=offsets[1:])
    values = pa.concat_arrays(texts).take(pa.array(chosen))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _related_lists(n: int, columns: list[pa.Array]) -> pa.Array:
    rows_parts, value_parts = [], []
    for col in columns:
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            rows_parts.append(pc.list_parent_indices(col).cast(pa.int64()))
            value_parts.append(pc.list_flatten(col).cast(pa.string()))
        else:
            rows_parts.append(pa.array(np.arange(n, dtype=np.int64)))
            value_parts.append(col.cast(pa.string()))
    rows = pa.concat_arrays(rows_parts)
    values = pa.concat_arrays(value_parts)
    keep = pc.fill_null(pc.greater(pc.binary_length(values), 0), False)
    long = pa.table({"row": rows, "seq": np.arange(len(rows), dtype=np.int64), "value": values})
    long = (
        long.filter(keep)
        .group_by(["row", "value"], use_threads=False)
        .aggregate([("seq", "min")])
        .sort_by([("row", "ascending"), ("seq_min", "ascending")])
    )
    counts = np.bincount(long.column("row").to_numpy(), minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), long.column("value").combine_chunks())


@dataclass(frozen=True)
class Target:
    """One table a batch may write: what `assemble` needs of its spec."""

    name: str
    suffix: str | None
    schema: pa.Schema
    leaves: Mapping[str, pa.DataType]
    related: Mapping[str, Sequence[tuple[str, ...]]]
    special: Mapping[str, str]  # dotted leaf -> "timestamp" or "date", coerced like rows
    constants: Mapping[str, str]  # tarn.* values

    def knows(self, path: str) -> bool:
        return path in self.leaves or _is_group(self.schema, path)


@dataclass
class Assembly:
    """What a batch gives: rows per table (each in record order, with the batch indices of
    its records) and the indices of the records left to `transform`."""

    tables: list[tuple[str, pa.Table, np.ndarray]]
    row_path: np.ndarray


TABLE = "_table"


def assemble(
    out: Mapping[str, Any],
    n: int,
    targets: Mapping[str, Target],
    tables: str | pa.Array | None,
    raws: Sequence[str] | None,
) -> Assembly:
    """Turn the batch function's columns into rows of the tables (see the module doc).

    `tables` is the table of every record (the default), or per record the table `table_by`
    chose (null where it chose none), or None (the source has no default table). `_table` in
    `out` (a suffix or a table name per record, null for none) wins over it, as it does for
    rows; a record left without a table goes through transform(), which says why."""
    if tables is None:
        tables = pa.nulls(n, pa.string())
    unknown = [
        k
        for k in out
        if k not in (ROW_PATH, TABLE) and not any(t.knows(k) for t in targets.values())
    ]
    if unknown:
        raise ColumnarError(f"returned {', '.join(sorted(unknown))}, which no table declares")
    if "ts" not in out:
        raise ColumnarError("returned no ts")
    to_rows = np.zeros(n, dtype=bool)
    if ROW_PATH in out:
        to_rows |= _numpy(_leaf_array(out[ROW_PATH], n, pa.bool_(), ROW_PATH).fill_null(False))
    chosen = tables if isinstance(tables, pa.Array) else None
    if TABLE in out:
        wanted = _leaf_array(out[TABLE], n, pa.string(), TABLE)
        names = {t.suffix: t.name for t in targets.values() if t.suffix} | {
            t.name: t.name for t in targets.values()
        }
        picked = lookup(wanted, names, None, pa.string())
        # a table the source does not declare: transform() says so
        to_rows |= _numpy(pc.and_(pc.is_valid(wanted), pc.is_null(picked)))
        chosen = pc.coalesce(picked, chosen if chosen is not None else pa.scalar(tables))
    if chosen is None:
        groups = [(str(tables), np.arange(n))]
    else:
        to_rows |= _numpy(pc.is_null(chosen))
        names_of = _numpy(pc.fill_null(chosen, ""))
        groups = [(name, np.flatnonzero(names_of == name)) for name in np.unique(names_of) if name]
    built = []
    for name, rows in groups:
        rows = rows[~to_rows[rows]]
        if not len(rows):
            continue
        target = targets[name]
        whole = len(rows) == n
        index = None if whole else pa.array(rows)
        part = {
            k: (v.take(index) if index is not None and isinstance(v, pa.Array) else v)
            for k, v in out.items()
            if k not in (ROW_PATH, TABLE) and target.knows(k)
        }
        part_raws = None if raws is None else (raws if whole else [raws[i] for i in rows.tolist()])
        table, lost = _assemble_one(part, len(rows), target, part_raws)
        to_rows[rows[lost]] = True
        keep = ~lost
        if not keep.all():
            table = table.filter(pa.array(keep))
        built.append((name, table, rows[keep]))
    return Assembly(built, np.flatnonzero(to_rows))


def _numpy(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _assemble_one(
    out: Mapping[str, Any], n: int, target: Target, raws: Sequence[str] | None
) -> tuple[pa.Table, np.ndarray]:
    """The rows of one table, and which of them must go through transform() instead."""
    leaves = target.leaves
    columns: dict[str, pa.Array] = {}
    lost = np.zeros(n, dtype=bool)
    for path, value in out.items():
        if path not in leaves:
            continue
        kind = "timestamp" if path == "ts" else target.special.get(path)
        if kind is not None and isinstance(value, pa.Array) and not _is_type(value, kind):
            given = value
            value = (
                timestamps(value)
                if kind == "timestamp"
                else per_value(_date_or_none, value, pa.date32())
            )
            # a value that does not read as a time: transform() says why
            lost |= _numpy(pc.and_(pc.is_valid(given), pc.is_null(value)))
        columns[path], unfit = _fitted(value, n, leaves[path], path)
        if unfit is not None:
            lost |= _numpy(unfit)
    lost |= _numpy(columns["ts"].is_null())

    if raws is not None:
        original = pa.array(raws, pa.string())
        given_original = columns.get("event.original")
        columns["event.original"] = (
            original if given_original is None else pc.coalesce(given_original, original)
        )
    for key, paths in target.related.items():
        own = columns.get(f"related.{key}")
        sources = [own] if own is not None else []
        sources += [columns[".".join(p)] for p in paths if ".".join(p) in columns]
        columns[f"related.{key}"] = _related(n, sources)
    for path, value in target.constants.items():
        columns[path] = pa.repeat(pa.scalar(value, leaves[path]), n)

    arrays = [_build(f, f.name, columns, out, n) for f in target.schema]
    return pa.Table.from_arrays(arrays, schema=target.schema), lost


def _is_type(values: pa.Array, kind: str) -> bool:
    return (
        pa.types.is_timestamp(values.type)
        if kind == "timestamp"
        else pa.types.is_date32(values.type)
    )


def _date_or_none(value: Any) -> Any:
    from tarn.normalize import _to_date  # the row path's own coercion

    try:
        return _to_date(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _is_group(schema: pa.Schema, path: str) -> bool:
    node: Any = schema
    for part in path.split("."):
        try:
            f = node.field(part)
        except KeyError:
            return False
        if not pa.types.is_struct(f.type):
            return False
        node = f.type
    return True


def _build(
    f: pa.Field, path: str, columns: Mapping[str, pa.Array], out: Mapping[str, Any], n: int
) -> pa.Array:
    if not pa.types.is_struct(f.type):
        found = columns.get(path)
        return found if found is not None else pa.nulls(n, f.type)
    children = [_build(c, f"{path}.{c.name}", columns, out, n) for c in f.type]
    given = out.get(path)
    if given is not None:
        valid = _leaf_array(given, n, pa.bool_(), path).fill_null(False)
        return pa.StructArray.from_arrays(children, fields=list(f.type), mask=pc.invert(valid))
    if not _provides(path, columns):
        return pa.nulls(n, f.type)
    return pa.StructArray.from_arrays(children, fields=list(f.type))


def _provides(prefix: str, columns: Iterable[str]) -> bool:
    start = prefix + "."
    return any(c.startswith(start) for c in columns)
