"""The ECS fields tarn knows, read from `ecs.yml`: name -> (tarn type, description).

Field sets are written once in the YAML; reusable groups (geo, user, hash, ...) are copied
under every prefix they are used at, as ECS itself does.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ECS_FILE = Path(__file__).parent / "ecs.yml"


@dataclass(frozen=True)
class EcsField:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Ecs:
    version: str
    fields: dict[str, EcsField]

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The known names closest to `name`: same field set first, then anywhere."""
        head = name.split(".")[0]
        same_set = [f for f in self.fields if f.split(".")[0] == head]
        close = difflib.get_close_matches(name, same_set, n=n, cutoff=0.6)
        if len(close) < n:
            extra = difflib.get_close_matches(name, list(self.fields), n=n, cutoff=0.75)
            close += [c for c in extra if c not in close][: n - len(close)]
        return close


def _expand(prefix: str, fields: dict[str, Any]) -> list[EcsField]:
    out = []
    for rel, spec in fields.items():
        name = f"{prefix}.{rel}" if prefix else rel
        out.append(EcsField(name, spec["type"], spec.get("description", "")))
    return out


@lru_cache(maxsize=1)
def load() -> Ecs:
    data = yaml.safe_load(ECS_FILE.read_text())
    found: dict[str, EcsField] = {}
    for set_name, fs in data["fieldsets"].items():
        for f in _expand("" if fs.get("root") else set_name, fs["fields"]):
            found[f.name] = f
    for group in data.get("reusable", {}).values():
        for prefix in group["at"]:
            for f in _expand(prefix, group["fields"]):
                found.setdefault(f.name, f)
    return Ecs(version=str(data["ecs_version"]), fields=dict(sorted(found.items())))
