"""The repository's manifests as data: YAML documents, and kustomizations rendered offline.

There may be no `kustomize` binary where the tests run, so `render` does what kustomize
does for the subset tarn uses (resources and JSON 6902 patches) and refuses anything else
by name, rather than guessing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIRS = ("knative", "eventing")
KUSTOMIZATION = "kustomization.yaml"
RENDERED_KEYS = frozenset({"apiVersion", "kind", "resources", "patches"})
TARGET_KEYS = frozenset({"group", "version", "kind", "name", "namespace"})


@dataclass(frozen=True)
class Resource:
    """One YAML document of a manifest file; `via` names the patch files applied to it."""

    file: str
    index: int
    doc: dict[str, Any]
    via: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return str(self.doc.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.doc.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))

    @property
    def label(self) -> str:
        """Kind/namespace/name, the way the failures name a resource."""
        return "/".join(p for p in (self.kind or "?", self.namespace, self.name or "?") if p)

    @property
    def where(self) -> str:
        return f"{self.file} (patched by {', '.join(self.via)})" if self.via else self.file

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: file, resource and the JSON path of the field."""

    file: str
    resource: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.resource}: {self.path or '(whole resource)'}: {self.message}"


def report(problems: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def format_path(parts: Iterable[str | int]) -> str:
    """`spec.template.spec.containers[0].env`, with ['a/b'] for keys that are not names."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def load_file(path: Path) -> tuple[list[Resource], list[Problem]]:
    """Every mapping document of a YAML file; unparseable or non-mapping ones as problems."""
    name = rel(path)
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as exc:
        return [], [Problem(name, "-", "", f"not valid YAML: {exc}")]
    resources, problems = [], []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(Problem(name, f"document {index}", "", "is not a mapping"))
            continue
        resources.append(Resource(name, index, doc))
    return resources, problems


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def kustomization_dirs() -> list[Path]:
    return sorted(
        p.parent for d in MANIFEST_DIRS for p in _yaml_files(ROOT / d) if p.name == KUSTOMIZATION
    )


def patch_files() -> set[Path]:
    """Files that kustomizations use as patches: not resources, so not validated alone."""
    found = set()
    for directory in kustomization_dirs():
        data = yaml.safe_load((directory / KUSTOMIZATION).read_text()) or {}
        for patch in data.get("patches") or []:
            if isinstance(patch, dict) and isinstance(patch.get("path"), str):
                found.add((directory / patch["path"]).resolve())
    return found


def resource_files() -> list[Path]:
    patches = patch_files()
    return [
        p
        for d in MANIFEST_DIRS
        for p in _yaml_files(ROOT / d)
        if p.name != KUSTOMIZATION and p.resolve() not in patches
    ]


def all_resources() -> tuple[list[Resource], list[Problem]]:
    resources: list[Resource] = []
    problems: list[Problem] = []
    for path in resource_files():
        found, bad = load_file(path)
        resources += found
        problems += bad
    return resources, problems


class PatchError(Exception):
    pass


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise PatchError(f"path {pointer!r} is not a JSON pointer (must start with /)")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, size_ok: bool = False) -> int:
    if not token.isdigit():
        raise PatchError(f"{token!r} is not a list index")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not size_ok):
        raise PatchError(f"index {idx} is out of range (the list has {len(container)} items)")
    return idx


def _parent(doc: Any, tokens: Sequence[str]) -> Any:
    cur = doc
    for depth, token in enumerate(tokens[:-1]):
        where = "/" + "/".join(tokens[: depth + 1])
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"{where} does not exist")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token)]
        else:
            raise PatchError(f"{where} is inside a scalar")
    return cur


def apply_json_patch(doc: dict[str, Any], ops: Sequence[Any]) -> dict[str, Any]:
    """RFC 6902 add, replace and remove, on a copy; raises PatchError naming the op."""
    out = copy.deepcopy(doc)
    for number, op in enumerate(ops):
        try:
            if not isinstance(op, dict) or "op" not in op or "path" not in op:
                raise PatchError("each op needs `op` and `path`")
            kind, tokens = op["op"], _tokens(op["path"])
            parent, last = _parent(out, tokens), tokens[-1]
            if kind == "add":
                value = copy.deepcopy(op.get("value"))
                if isinstance(parent, dict):
                    parent[last] = value
                elif isinstance(parent, list):
                    idx = len(parent) if last == "-" else _index(parent, last, size_ok=True)
                    parent.insert(idx, value)
                else:
                    raise PatchError(f"cannot add into a {type(parent).__name__}")
            elif kind in ("replace", "remove"):
                if isinstance(parent, dict):
                    if last not in parent:
                        raise PatchError(f"{op['path']} does not exist")
                    key: str | int = last
                elif isinstance(parent, list):
                    key = _index(parent, last)
                else:
                    raise PatchError(f"{op['path']} is inside a scalar")
                if kind == "replace":
                    parent[key] = copy.deepcopy(op.get("value"))
                else:
                    del parent[key]
            else:
                raise PatchError(f"op {kind!r} is not supported (add, replace, remove)")
        except PatchError as exc:
            label = f"{op.get('op')} {op.get('path')}" if isinstance(op, dict) else repr(op)
            raise PatchError(f"op {number} ({label}): {exc}") from None
    return out


def target_matches(target: dict[str, Any], resource: Resource) -> bool:
    version = resource.api_version.rpartition("/")[2]
    wanted = {
        "group": resource.group,
        "version": version,
        "kind": resource.kind,
        "name": resource.name,
        "namespace": resource.namespace,
    }
    return all(str(target[k]) == wanted[k] for k in TARGET_KEYS if k in target)


@dataclass
class Rendered:
    """The output of one kustomization, and which files it read."""

    root: str
    resources: list[Resource] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)

    def find(self, kind: str, name: str) -> Resource | None:
        return next((r for r in self.resources if r.kind == kind and r.name == name), None)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]


def render(directory: Path) -> Rendered:
    """What `kustomize build directory` outputs, for resources + JSON 6902 patches."""
    kfile = directory / KUSTOMIZATION
    kname = rel(kfile)
    out = Rendered(rel(directory))
    if not kfile.is_file():
        out.problems.append(Problem(kname, "Kustomization", "", "does not exist"))
        return out
    out.files.add(kname)
    try:
        data = yaml.safe_load(kfile.read_text()) or {}
    except yaml.YAMLError as exc:
        out.problems.append(Problem(kname, "Kustomization", "", f"not valid YAML: {exc}"))
        return out
    for key in sorted(set(data) - RENDERED_KEYS):
        out.problems.append(
            Problem(
                kname,
                "Kustomization",
                key,
                "not understood by the offline renderer in tests/k8s/_manifests.py "
                "(it renders resources and JSON 6902 patches); teach it, or keep to those",
            )
        )

    for i, entry in enumerate(data.get("resources") or []):
        path = directory / str(entry)
        if path.is_dir():
            sub = render(path)
            out.resources += sub.resources
            out.files |= sub.files
            out.problems += sub.problems
        elif path.is_file():
            found, bad = load_file(path)
            out.resources += found
            out.files.add(rel(path))
            out.problems += bad
        else:
            out.problems.append(
                Problem(kname, "Kustomization", f"resources[{i}]", f"{entry!r} does not exist")
            )

    seen: dict[tuple[str, str, str, str], Resource] = {}
    for r in out.resources:
        if r.key in seen:
            out.problems.append(
                Problem(r.file, r.label, "metadata.name", f"also defined in {seen[r.key].file}")
            )
        seen[r.key] = r

    for i, patch in enumerate(data.get("patches") or []):
        out.problems += _apply_patch(directory, kname, i, patch, out)
    return out


def _apply_patch(directory: Path, kname: str, i: int, patch: Any, out: Rendered) -> list[Problem]:
    where = f"patches[{i}]"
    if not isinstance(patch, dict):
        return [Problem(kname, "Kustomization", where, "must be a mapping")]
    if "path" in patch:
        source = directory / str(patch["path"])
        if not source.is_file():
            return [
                Problem(
                    kname, "Kustomization", f"{where}.path", f"{patch['path']!r} does not exist"
                )
            ]
        pname, text = rel(source), source.read_text()
        out.files.add(pname)
    elif isinstance(patch.get("patch"), str):
        pname, text = f"{kname} {where}.patch", patch["patch"]
    else:
        return [Problem(kname, "Kustomization", where, "needs `path` or `patch`")]
    try:
        ops = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [Problem(pname, "-", "", f"not valid YAML: {exc}")]
    if not isinstance(ops, list):
        return [
            Problem(
                pname,
                "-",
                "",
                "is not a JSON 6902 patch (a list of ops); tarn's overlays use only those, "
                "because kustomize replaces a custom resource's lists whole in a merge patch",
            )
        ]
    target = patch.get("target")
    if not isinstance(target, dict) or not target:
        return [
            Problem(kname, "Kustomization", f"{where}.target", "a JSON 6902 patch needs a target")
        ]
    unknown = sorted(set(target) - TARGET_KEYS)
    if unknown:
        return [
            Problem(
                kname, "Kustomization", f"{where}.target", f"selectors {unknown} are not rendered"
            )
        ]
    problems = []
    matched = False
    for n, r in enumerate(out.resources):
        if not target_matches(target, r):
            continue
        matched = True
        try:
            out.resources[n] = Resource(
                r.file, r.index, apply_json_patch(r.doc, ops), (*r.via, pname)
            )
        except PatchError as exc:
            problems.append(Problem(pname, r.label, "", str(exc)))
    if not matched:
        problems.append(
            Problem(kname, "Kustomization", f"{where}.target", f"matches no resource: {target}")
        )
    return problems
