"""Reading log_source.yml and tables/*.yml: YAML, then JSON Schema, with errors that say
which file, which key and what to do about it."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from tarn.logsources.exceptions import LogSourceError

HERE = Path(__file__).parent
SOURCE_SCHEMA_FILE = HERE / "log_source.schema.json"
TABLE_SCHEMA_FILE = HERE / "table.schema.json"


@lru_cache(maxsize=1)
def _validators() -> tuple[jsonschema.protocols.Validator, jsonschema.protocols.Validator]:
    source = json.loads(SOURCE_SCHEMA_FILE.read_text())
    table = json.loads(TABLE_SCHEMA_FILE.read_text())
    registry: Registry = Registry().with_resources(
        [
            (source["$id"], Resource.from_contents(source)),
            (table["$id"], Resource.from_contents(table)),
        ]
    )
    cls = jsonschema.validators.validator_for(source)
    cls.check_schema(source)
    cls.check_schema(table)
    return cls(source, registry=registry), cls(table, registry=registry)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LogSourceError(path, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise LogSourceError(
            path, f"is not valid YAML{where}: {problem}. Fix the syntax there."
        ) from exc


def _key(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _problem(error: jsonschema.ValidationError) -> str:
    key = _key(error)
    fix = error.schema.get("x-fix") if isinstance(error.schema, dict) else None
    v = error.validator
    if v == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in known]
        out = []
        for k in extra:
            near = difflib.get_close_matches(str(k), known, n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"known keys: {', '.join(known)}"
            where = f"{key}.{k}" if key != "(top level)" else str(k)
            out.append(f"`{where}`: unknown key. Fix: {hint}")
        return "; ".join(out)
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"`{key}`: `{missing}` is required. Fix: add `{missing}`"
    if v == "enum":
        return f"`{key}`: {error.instance!r} is not allowed. Fix: {fix or 'use one of ' + ', '.join(map(str, error.validator_value))}"
    detail = error.message
    if len(detail) > 200:
        detail = detail[:200] + "..."
    return f"`{key}`: {detail}. Fix: {fix or 'see log_source.schema.json'}"


def validate(path: Path, data: Any, kind: str = "source") -> dict[str, Any]:
    """Validate one file's data; raise LogSourceError listing every problem found."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LogSourceError(
            path, f"must be a YAML mapping (key: value lines), found {type(data).__name__}"
        )
    validator = _validators()[0 if kind == "source" else 1]
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise LogSourceError(path, [_problem(e) for e in errors])
    return data
