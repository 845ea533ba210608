"""Log sources: how raw logs of one kind are parsed, transformed to ECS and typed.

A log source is a folder with `log_source.yml` (name, ingest format, schema) and an optional
`transform.py` whose `transform(record)` returns a dict, a list of dicts, or None.
Built-in sources live in `builtin/`; a user's own in `$TARN_CONFIG_DIR/log_sources/`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from tarn.exceptions import TarnError, UnknownLogSourceError
from tarn.logsources._schema import CORE_FIELDS, Field, arrow_schema, merge_fields

BUILTIN_DIR = Path(__file__).parent / "builtin"

Transform = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class LogSource:
    name: str
    path: Path
    format: str
    records_path: str | None
    keep_original: bool
    fields: tuple[Field, ...]
    transform: Transform
    description: str = ""
    schema: pa.Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", arrow_schema(merge_fields(CORE_FIELDS, self.fields)))

    @property
    def table(self) -> str:
        return self.name


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return record


def _load_transform(folder: Path) -> Transform:
    module_path = folder / "transform.py"
    if not module_path.exists():
        return _identity
    spec = importlib.util.spec_from_file_location(f"tarn_logsource_{folder.name}", module_path)
    if spec is None or spec.loader is None:
        raise TarnError(f"{module_path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "transform", None)
    if not callable(fn):
        raise TarnError(f"{module_path}: must define transform(record)")
    return fn  # type: ignore[no-any-return]


def load_folder(folder: Path) -> LogSource:
    spec_file = folder / "log_source.yml"
    try:
        spec = yaml.safe_load(spec_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TarnError(f"{spec_file}: {exc}") from exc
    if not isinstance(spec, dict) or "name" not in spec:
        raise TarnError(f"{spec_file}: must be a mapping with at least `name`")
    ingest = spec.get("ingest") or {}
    fields = tuple(
        Field(f["name"], f["type"], f.get("description", ""))
        for f in (spec.get("schema") or {}).get("fields", [])
    )
    return LogSource(
        name=spec["name"],
        path=folder,
        format=ingest.get("format", "ndjson"),
        records_path=ingest.get("records_path"),
        keep_original=bool(ingest.get("keep_original", True)),
        fields=fields,
        transform=_load_transform(folder),
        description=spec.get("description", ""),
    )


def _folders(config_dir: str | None) -> list[Path]:
    roots = [BUILTIN_DIR]
    if config_dir:
        roots.append(Path(config_dir) / "log_sources")
    found = []
    for root in roots:
        if root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if (p / "log_source.yml").is_file()))
    return found


@lru_cache(maxsize=8)
def registry(config_dir: str | None = None) -> dict[str, LogSource]:
    """All log sources by name; a user's source replaces a built-in one of the same name."""
    out: dict[str, LogSource] = {}
    for folder in _folders(config_dir):
        source = load_folder(folder)
        out[source.name] = source
    return out


def get(name: str, config_dir: str | None = None) -> LogSource:
    sources = registry(config_dir)
    if name not in sources:
        raise UnknownLogSourceError(name, list(sources))
    return sources[name]
