"""Log sources: how raw logs of one kind are parsed, transformed to ECS and typed.

A log source is a folder:

    <name>/log_source.yml     name, ingest (format, ...), table_by, schema, transform
    <name>/tables/<t>.yml     optional: the schema of table <name>_<t>
    <name>/transform.py       optional: transform(record) -> dict | list[dict] | None
    <name>/samples/, golden/  sample raw logs and their normalized rows (see golden.py)

Built-in sources live in `builtin/`; a user's own in `$TARN_CONFIG_DIR/log_sources/`, where a
folder with a built-in's name replaces it and `extends: <built-in>` inherits from one. The
YAML is checked against log_source.schema.json / table.schema.json when it is loaded; ECS
names are checked against ecs.yml, which gives their types.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from tarn.exceptions import TarnError, UnknownLogSourceError
from tarn.logsources import _ecs, _spec
from tarn.logsources._parse import Ingest
from tarn.logsources._schema import CORE_FIELDS, Field, arrow_schema, leaf_types, merge_fields
from tarn.logsources.columnar import ColumnarTransform
from tarn.logsources.exceptions import LogSourceError

__all__ = [
    "BUILTIN_DIR",
    "Ingest",
    "LogSource",
    "LogSourceError",
    "TableBy",
    "TableSpec",
    "builtin",
    "get",
    "load_all",
    "load_folder",
    "names",
    "registry",
]

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_TRANSFORM = "transform.py"
NAME = re.compile(r"[a-z][a-z0-9_]*")

Transform = Callable[[Any], Any]

# Where related.* values are gathered from when a table has these columns (the transform's
# own related.* values come first).
RELATED_FROM: dict[str, tuple[str, ...]] = {
    "ip": (
        "source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "observer.ip",
        "source.nat.ip", "destination.nat.ip", "client.nat.ip", "server.nat.ip",
        "network.forwarded_ip", "dns.resolved_ip", "threat.indicator.ip",
    ),
    "user": (
        "user.name", "user.target.name", "user.effective.name", "user.changes.name",
        "source.user.name", "destination.user.name", "client.user.name", "server.user.name",
    ),
    "hosts": (
        "host.name", "host.hostname", "observer.hostname",
        "source.domain", "destination.domain", "client.domain", "server.domain",
    ),
    "hash": (
        "file.hash.md5", "file.hash.sha1", "file.hash.sha256", "file.hash.sha512",
        "process.hash.md5", "process.hash.sha1", "process.hash.sha256", "process.hash.sha512",
        "process.parent.hash.md5", "process.parent.hash.sha1", "process.parent.hash.sha256",
        "tls.client.ja3", "tls.server.ja3s", "tls.client.hash.sha256", "tls.server.hash.sha256",
        "tls.client.hash.sha1", "tls.server.hash.sha1", "tls.client.hash.md5", "tls.server.hash.md5",
    ),
}  # fmt: skip

FieldPath = tuple[str, ...]


@dataclass(frozen=True, eq=False)
class TableSpec:
    """One table of a log source: its columns and what normalize() does per row for them."""

    name: str
    suffix: str | None
    fields: tuple[Field, ...]  # declared (ECS + custom), without the core columns
    schema: pa.Schema = field(init=False, repr=False)
    timestamp_paths: tuple[FieldPath, ...] = field(init=False, repr=False)
    date_paths: tuple[FieldPath, ...] = field(init=False, repr=False)
    json_paths: tuple[FieldPath, ...] = field(init=False, repr=False)
    related: dict[str, tuple[FieldPath, ...]] = field(init=False, repr=False)
    columns: dict[str, pa.DataType] = field(init=False, repr=False)  # dotted leaf -> type

    def __post_init__(self) -> None:
        schema = arrow_schema(merge_fields(CORE_FIELDS, self.fields), docs=True)
        declared = {f.name: f.type.strip() for f in self.fields}
        leaves = leaf_types(schema)
        set_ = object.__setattr__
        set_(self, "schema", schema)
        set_(self, "columns", leaves)
        set_(self, "timestamp_paths", _paths(declared, "timestamp", skip=("ts",)))
        set_(self, "date_paths", _paths(declared, "date"))
        set_(self, "json_paths", _paths(declared, "json"))
        set_(
            self,
            "related",
            {
                k: tuple(tuple(p.split(".")) for p in v if p in leaves)
                for k, v in RELATED_FROM.items()
            },
        )


def _paths(
    declared: dict[str, str], type_: str, skip: tuple[str, ...] = ()
) -> tuple[FieldPath, ...]:
    return tuple(tuple(n.split(".")) for n, t in declared.items() if t == type_ and n not in skip)


@dataclass(frozen=True)
class TableBy:
    field: str
    map: tuple[tuple[str, str], ...]

    def lookup(self) -> dict[str, str]:
        return dict(self.map)


@dataclass(frozen=True, eq=False)
class LogSource:
    name: str
    path: Path
    ingest: Ingest
    table_specs: dict[str, TableSpec]
    default_table: str | None
    transform: Transform
    description: str = ""
    table_by: TableBy | None = None
    # transform() for a batch at once, where the source ships one (see columnar.py)
    transform_columns: ColumnarTransform | None = None
    extends: str | None = None
    builtin: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # merged spec, for `extends`

    @property
    def format(self) -> str:
        return self.ingest.format

    @property
    def records_path(self) -> str | None:
        return self.ingest.records_path

    @property
    def keep_original(self) -> bool:
        return self.ingest.keep_original

    @property
    def columnar(self) -> ColumnarTransform | None:
        """The batch transform the transformer runs, if this source has one it can use. With
        `table_by`, the batch function must read the field it names (as a string): the table
        of each record is chosen from it before the function runs."""
        plan = self.transform_columns
        if plan is None or self.table_by is None:
            return plan
        field = self.table_by.field
        return plan if "." not in field and plan.reads_text(field) else None

    @property
    def table(self) -> str:
        """The default table (also named on this source's sideline rows)."""
        return self.default_table or self.name

    @property
    def tables(self) -> dict[str, pa.Schema]:
        return {name: spec.schema for name, spec in self.table_specs.items()}

    @property
    def schema(self) -> pa.Schema:
        spec = self.table_specs.get(self.table)
        return spec.schema if spec else arrow_schema(CORE_FIELDS, docs=True)

    @property
    def fields(self) -> tuple[Field, ...]:
        spec = self.table_specs.get(self.table)
        return spec.fields if spec else ()

    def table_name(self, suffix: str | None) -> str:
        return f"{self.name}_{suffix}" if suffix else self.name


# -- loading ----------------------------------------------------------------------------------
def _identity(record: Any) -> Any:
    return record


def _load_transform(
    module_path: Path, source_name: str, builtin: bool
) -> tuple[Transform, ColumnarTransform | None]:
    module_name = f"tarn_logsource_{'builtin' if builtin else 'user'}_{source_name}"
    spec = importlib.util.spec_from_file_location(module_name, module_path)
    if spec is None or spec.loader is None:
        raise LogSourceError(module_path, "cannot be imported. Fix: make it a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise LogSourceError(
            module_path,
            f"fails to import: {type(exc).__name__}: {exc}. Fix: run `python {module_path.name}` to see where",
        ) from exc
    fn = getattr(module, "transform", None)
    if not callable(fn):
        raise LogSourceError(
            module_path, "must define transform(record). Fix: add `def transform(record): ...`"
        )
    batch = getattr(module, "transform_columns", None)
    if batch is not None and not isinstance(batch, ColumnarTransform):
        raise LogSourceError(
            module_path,
            "transform_columns must declare the raw fields it reads. Fix: decorate it with "
            "`@columnar(raw={...})` from tarn.logsources.columnar",
        )
    return fn, batch


def _schema_fields(
    key: str, schema: dict[str, Any] | None, problems: list[str]
) -> tuple[Field, ...]:
    """ECS names (typed from ecs.yml) and custom fields of one `schema:` block."""
    if not schema:
        return ()
    ecs = _ecs.load()
    out: list[Field] = []
    for name in schema.get("ecs") or []:
        known = ecs.fields.get(name)
        if known is None:
            near = ecs.suggest(name)
            hint = f"did you mean {', '.join(near)}?" if near else "check the name in ecs.yml"
            problems.append(
                f"`{key}.ecs`: `{name}` is not an ECS {ecs.version} field. Fix: {hint} "
                f"(a field of your own goes under `{key}.fields` with a type)"
            )
            continue
        out.append(Field(known.name, known.type, known.description))
    for item in schema.get("fields") or []:
        known = ecs.fields.get(item["name"])
        if known is not None and known.type != item["type"].strip():
            problems.append(
                f"`{key}.fields`: `{item['name']}` is an ECS field of type {known.type}, not "
                f"{item['type']}. Fix: list it under `{key}.ecs`, or give your field a name of its own"
            )
            continue
        description = item.get("description") or (known.description if known else "")
        out.append(Field(item["name"], item["type"], description))
    fields = tuple(merge_fields(out))
    try:
        arrow_schema(merge_fields(CORE_FIELDS, fields))
    except TarnError as exc:
        problems.append(f"`{key}`: {exc}. Fix: use either the group or the value, not both")
        return ()
    return fields


def _merge_schema(base: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any] | None:
    if base is None and own is None:
        return None
    base, own = base or {}, own or {}
    return {
        "ecs": list(base.get("ecs") or []) + list(own.get("ecs") or []),
        "fields": list(base.get("fields") or []) + list(own.get("fields") or []),
    }


def load_folder(
    folder: Path, builtin: bool | None = None, _chain: tuple[Path, ...] = ()
) -> LogSource:
    """Read and check one log source folder (and the built-in it extends)."""
    folder = Path(folder)
    if builtin is None:
        builtin = folder.parent.resolve() == BUILTIN_DIR.resolve()
    spec_file = folder / "log_source.yml"
    data = _spec.validate(spec_file, _spec.read_yaml(spec_file))
    problems: list[str] = []
    name = data["name"]
    if name != folder.name:
        problems.append(
            f"`name`: is {name!r} but the folder is {folder.name!r}. Fix: make them the same"
        )

    base: LogSource | None = None
    if data.get("extends"):
        base_folder = BUILTIN_DIR / data["extends"]
        if not (base_folder / "log_source.yml").is_file():
            known = ", ".join(builtin_names())
            raise LogSourceError(
                spec_file,
                f"`extends`: there is no built-in log source {data['extends']!r}. Fix: use one of {known}",
            )
        if base_folder.resolve() in {*_chain, folder.resolve()}:
            raise LogSourceError(spec_file, "`extends`: extends itself. Fix: remove `extends`")
        base = (
            load_folder(base_folder, True, (*_chain, folder.resolve()))
            if builtin
            else _cached(base_folder, True)  # share the built-in's loaded transform
        )
    raw_base = base.raw if base else {}

    ingest = {**raw_base.get("ingest", {}), **(data.get("ingest") or {})}
    if "format" not in ingest:
        problems.append(
            "`ingest.format`: is required. Fix: add e.g. `ingest: {format: ndjson}` "
            "(json, ndjson, csv, tsv, zeek, syslog, kv, cef)"
        )
    if ingest.get("records_path") and ingest.get("format") != "json":
        problems.append("`ingest.records_path`: only the json format reads it. Fix: remove it")
    if "delimiter" in ingest and ingest.get("format") != "csv":
        problems.append("`ingest.delimiter`: only the csv format reads it. Fix: remove it")
    table_by = data.get("table_by") or raw_base.get("table_by")

    top_schema = _merge_schema(raw_base.get("schema"), data.get("schema"))
    tables_raw: dict[str, dict[str, Any] | None] = dict(raw_base.get("tables", {}))
    table_files: dict[str, Path] = {}
    tables_dir = folder / "tables"
    if tables_dir.is_dir():
        for table_file in sorted([*tables_dir.glob("*.yml"), *tables_dir.glob("*.yaml")]):
            suffix = table_file.stem
            if not NAME.fullmatch(suffix):
                problems.append(
                    f"tables/{table_file.name}: the file name is the table suffix and must be "
                    "lowercase letters, digits and _. Fix: rename the file"
                )
                continue
            if suffix in table_files:
                problems.append(
                    f"tables/{table_file.name}: table {suffix!r} is declared twice. Fix: keep one file"
                )
                continue
            tdata = _spec.validate(table_file, _spec.read_yaml(table_file), kind="table")
            table_files[suffix] = table_file
            tables_raw[suffix] = _merge_schema(tables_raw.get(suffix), tdata["schema"])

    specs: dict[str, TableSpec] = {}
    for suffix, schema in tables_raw.items():
        table_problems: list[str] = []
        fields = _schema_fields("schema", schema, table_problems)
        if table_problems:
            raise LogSourceError(table_files.get(suffix, spec_file), table_problems)
        specs[f"{name}_{suffix}"] = TableSpec(f"{name}_{suffix}", suffix, fields)

    default_suffix = ingest.get("table")
    default: str | None = None
    if top_schema is not None:
        default = f"{name}_{default_suffix}" if default_suffix else name
        if default in specs:
            problems.append(
                f"`schema`: table {default} is declared both here and in tables/{default_suffix}.yml. "
                "Fix: keep one"
            )
        fields = _schema_fields("schema", top_schema, problems)
        specs[default] = TableSpec(default, default_suffix, fields)
    elif default_suffix:
        default = f"{name}_{default_suffix}"
        if default not in specs:
            problems.append(
                f"`ingest.table`: table {default} has no schema. Fix: add tables/{default_suffix}.yml "
                "or a top-level `schema`"
            )
    if not specs:
        problems.append(
            "declares no table. Fix: add a top-level `schema: {ecs: [...], fields: [...]}` "
            "or tables/<suffix>.yml files"
        )
    if table_by:
        missing = sorted({s for s in table_by["map"].values() if f"{name}_{s}" not in specs})
        if missing:
            problems.append(
                f"`table_by.map`: no schema for table suffix(es) {', '.join(missing)}. "
                f"Fix: add {', '.join(f'tables/{s}.yml' for s in missing)}"
            )

    transform: Transform
    batch: ColumnarTransform | None = None
    module_path = folder / (data.get("transform") or DEFAULT_TRANSFORM)
    if module_path.is_file():
        if problems:
            raise LogSourceError(spec_file, problems)
        transform, batch = _load_transform(module_path, name, builtin)
    elif data.get("transform"):
        problems.append(
            f"`transform`: {module_path.name} does not exist in {folder}. "
            "Fix: create it with `def transform(record): ...` or remove the key"
        )
        transform = _identity
    else:  # an inherited transform brings its batch version with it
        transform = base.transform if base else _identity
        batch = base.transform_columns if base else None
    if problems:
        raise LogSourceError(spec_file, problems)

    return LogSource(
        name=name,
        path=folder,
        ingest=Ingest(
            format=ingest["format"],
            records_path=ingest.get("records_path"),
            keep_original=bool(ingest.get("keep_original", True)),
            delimiter=ingest.get("delimiter") or ",",
            table=default_suffix,
        ),
        table_specs=specs,
        default_table=default,
        transform=transform,
        transform_columns=batch,
        description=data.get("description") or (base.description if base else ""),
        table_by=TableBy(table_by["field"], tuple(table_by["map"].items())) if table_by else None,
        extends=data.get("extends"),
        builtin=builtin,
        raw={"ingest": ingest, "table_by": table_by, "schema": top_schema, "tables": tables_raw},
    )


# -- finding ----------------------------------------------------------------------------------
def _user_dir(config_dir: str | None) -> Path | None:
    return Path(config_dir) / "log_sources" if config_dir else None


def _folders(root: Path | None) -> dict[str, Path]:
    if root is None or not root.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(root.iterdir())
        if NAME.fullmatch(p.name) and (p / "log_source.yml").is_file()
    }


def builtin_names() -> list[str]:
    return list(_folders(BUILTIN_DIR))


def names(config_dir: str | None = None) -> list[str]:
    """Every log source name: built-in ones and the user's own."""
    return sorted({*_folders(BUILTIN_DIR), *_folders(_user_dir(config_dir))})


@lru_cache(maxsize=256)
def _cached(folder: Path, builtin: bool) -> LogSource:
    return load_folder(folder, builtin)


def _folder_of(name: str, config_dir: str | None) -> tuple[Path, bool] | None:
    if not NAME.fullmatch(name or ""):
        return None
    user = _user_dir(config_dir)
    if user is not None and (user / name / "log_source.yml").is_file():
        return user / name, False
    if (BUILTIN_DIR / name / "log_source.yml").is_file():
        return BUILTIN_DIR / name, True
    return None


def get(name: str, config_dir: str | None = None) -> LogSource:
    """The log source `name`: the user's own if there is one, else the built-in one.

    Only that source (and the built-in it extends) is loaded, so one broken folder does not
    stop the others."""
    found = _folder_of(name, config_dir)
    if found is None:
        raise UnknownLogSourceError(name, names(config_dir))
    return _cached(*found)


def builtin(name: str) -> LogSource:
    """The built-in log source `name`, even if a user's source replaces it (for `extends`)."""
    if not NAME.fullmatch(name or "") or not (BUILTIN_DIR / name / "log_source.yml").is_file():
        raise UnknownLogSourceError(name, builtin_names())
    return _cached(BUILTIN_DIR / name, True)


def load_all(
    config_dir: str | None = None,
) -> tuple[dict[str, LogSource], dict[str, LogSourceError]]:
    """Every log source that loads, and the error of each one that does not."""
    ok: dict[str, LogSource] = {}
    failed: dict[str, LogSourceError] = {}
    for name in names(config_dir):
        try:
            ok[name] = get(name, config_dir)
        except LogSourceError as exc:
            failed[name] = exc
    return ok, failed


def registry(config_dir: str | None = None) -> dict[str, LogSource]:
    """All log sources by name; raises the first LogSourceError met."""
    ok, failed = load_all(config_dir)
    if failed:
        raise next(iter(failed.values()))
    return ok


def reset() -> None:
    """Forget loaded sources (tests, or after editing a source folder in a long-lived process)."""
    _cached.cache_clear()
