"""Schema validation of manifests, offline.

Custom resources (Knative Serving, Eventing, eventing-natss) are checked against the
`openAPIV3Schema` of their CRDs in ../shared/k8s-schemas; core kinds (ConfigMap, CronJob,
...) against the schemas that kubernetes-validate ships. Both are strict the way
`kubectl apply` (server-side field validation) is: a field the schema does not know is an
error, unless the schema preserves unknown fields there.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from ._manifests import ROOT, Problem, Resource, format_path

SHARED_SCHEMAS = ROOT.parent / "shared" / "k8s-schemas"
CRD_DIR = SHARED_SCHEMAS / "crds"
# The oldest Kubernetes that the Knative releases in docs/deploy.md support: a manifest
# valid there uses nothing newer.
K8S_VERSION = "1.30.0"
CRD_GROUP_SUFFIX = "knative.dev"
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_MESSAGE = 240
SUBSCHEMA_KEYS = frozenset({"items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def is_custom(resource: Resource) -> bool:
    """Kinds whose schema comes from a CRD (Knative and its extensions)."""
    return resource.group == CRD_GROUP_SUFFIX or resource.group.endswith("." + CRD_GROUP_SUFFIX)


def structural_to_jsonschema(node: Any) -> Any:
    """A CRD's structural schema as JSON Schema (draft 4, which OpenAPI 3.0 follows).

    - x-kubernetes-int-or-string: an integer or a string.
    - x-kubernetes-preserve-unknown-fields: the object stays open.
    - any other object with `properties` is closed (additionalProperties: false): the API
      server drops or, with field validation, rejects a field it does not know.
    - nullable: null is allowed too.
    """
    if isinstance(node, list):
        return [structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: structural_to_jsonschema(sub) for name, sub in value.items()}
        elif key in SUBSCHEMA_KEYS and isinstance(value, (dict, list)):
            out[key] = structural_to_jsonschema(value)
        elif key in ("description", "example", "examples"):
            continue
        else:
            out[key] = value
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _with_type_meta(schema: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind and metadata are allowed at the root whether a CRD lists them or not."""
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object"})
    return schema


class CrdSchemas:
    """JSON Schemas by (apiVersion, kind), from a folder of CustomResourceDefinitions."""

    def __init__(self, crd_dir: Path) -> None:
        self.crd_dir = crd_dir
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(crd_dir.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec.get("versions", []):
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if schema:
                        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                        self._schemas[key] = _with_type_meta(structural_to_jsonschema(schema))

    def kinds(self) -> set[tuple[str, str]]:
        return set(self._schemas)

    def get(self, api_version: str, kind: str) -> dict[str, Any] | None:
        return self._schemas.get((api_version, kind))


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _problems(
    where: str, label: str, error: jsonschema.ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[Problem]:
    """One problem per bad field; an unknown field is named in the path itself."""
    path = [*prefix, *error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        if extra:
            return [
                Problem(where, label, format_path([*path, k]), "unknown field (not in the schema)")
                for k in extra
            ]
    return [Problem(where, label, format_path(path), _short(error.message))]


def validate_against(
    doc: dict[str, Any], schema: dict[str, Any], where: str, label: str
) -> list[Problem]:
    validator = jsonschema.Draft4Validator(schema)
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        problems += _problems(where, label, error)
    return problems


def validate_core(doc: dict[str, Any], where: str, label: str) -> list[Problem]:
    """Strict kubernetes-validate check; it stops at the first bad field."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return _problems(where, label, error)
    except kubernetes_validate.SchemaNotFoundError as error:
        return [Problem(where, label, "apiVersion", error.message)]
    return []


def _name_problems(resource: Resource) -> list[Problem]:
    name = resource.name
    if DNS_LABEL.fullmatch(name) and len(name) <= 63:
        return []
    return [
        Problem(
            resource.where,
            resource.label,
            "metadata.name",
            f"{name!r} is not a DNS-1123 label (lower-case letters, digits, '-'; at most 63)",
        )
    ]


@cache
def _crds(crd_dir: Path) -> CrdSchemas:
    return CrdSchemas(crd_dir)


def load_crds(crd_dir: Path = CRD_DIR) -> CrdSchemas:
    return _crds(crd_dir)


def validate_custom(resource: Resource, crds: CrdSchemas) -> list[Problem]:
    """A custom resource against its CRD; its metadata against Kubernetes' ObjectMeta."""
    schema = crds.get(resource.api_version, resource.kind)
    if schema is None:
        return [
            Problem(
                resource.where,
                resource.label,
                "apiVersion",
                f"no CRD in {crds.crd_dir.name}/ defines {resource.api_version} {resource.kind}",
            )
        ]
    problems = validate_against(resource.doc, schema, resource.where, resource.label)
    if isinstance(resource.doc.get("metadata"), dict):
        # ObjectMeta is the API server's own; a ConfigMap carries the very same type.
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": resource.doc["metadata"]}
        problems += validate_core(probe, resource.where, resource.label)
    return problems


def validate_resource(resource: Resource, crds: CrdSchemas | None) -> list[Problem]:
    """Every problem of one manifest document; `crds` is needed for custom kinds."""
    for field in ("apiVersion", "kind", "metadata"):
        if field not in resource.doc:
            return [Problem(resource.where, resource.label, field, "missing")]
    problems = _name_problems(resource)
    if is_custom(resource):
        if crds is None:
            raise ValueError(f"{resource.label} is a custom resource: CRD schemas are needed")
        return problems + validate_custom(resource, crds)
    return problems + validate_core(resource.doc, resource.where, resource.label)
