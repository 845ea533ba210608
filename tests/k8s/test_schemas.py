"""Every manifest validates: custom resources against their CRDs, core kinds strictly.

A failure names the file, the resource (Kind/namespace/name) and the JSON path of each
bad field, e.g. `knative/base/services/detector.yaml: Service/tarn/detector:
spec.template.spec.containerConcurrency: 'two' is not of type 'integer'`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ._manifests import ROOT, Resource, all_resources, load_file, render, report
from ._schemas import CrdSchemas, is_custom, validate_against, validate_resource

RESOURCES, LOAD_PROBLEMS = all_resources()
OVERLAYS = ("knative/overlays/dev", "knative/overlays/prod")
# Only what an overlay changed differs from the base, which is validated file by file.
PATCHED = [(o, r) for o in OVERLAYS for r in render(ROOT / o).resources if r.via]


def _crds_for(resource: Resource, request: pytest.FixtureRequest) -> CrdSchemas | None:
    return request.getfixturevalue("crd_schemas") if is_custom(resource) else None


def test_every_manifest_file_parses() -> None:
    assert RESOURCES, "no manifests found under knative/ and eventing/"
    assert not LOAD_PROBLEMS, report(LOAD_PROBLEMS)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: f"{r.file}::{r.label}")
def test_manifest_validates(resource: Resource, request: pytest.FixtureRequest) -> None:
    problems = validate_resource(resource, _crds_for(resource, request))
    assert not problems, report(problems)


@pytest.mark.parametrize(
    ("overlay", "resource"), PATCHED, ids=[f"{o}::{r.label}" for o, r in PATCHED]
)
def test_patched_resource_validates(
    overlay: str, resource: Resource, request: pytest.FixtureRequest
) -> None:
    problems = validate_resource(resource, _crds_for(resource, request))
    assert not problems, f"as rendered by {overlay}:\n{report(problems)}"


def test_overlays_patch_something() -> None:
    for overlay in OVERLAYS:
        assert any(o == overlay for o, _ in PATCHED), f"{overlay} patches nothing"


def _channel_templates() -> list[tuple[str, Resource]]:
    out = []
    for where in ("knative/base", *OVERLAYS):
        cm = render(ROOT / where).find("ConfigMap", "config-br-default-channel")
        if cm is not None:
            out.append((where, cm))
    return out


CHANNEL_TEMPLATES = _channel_templates()


@pytest.mark.parametrize(
    ("where", "configmap"), CHANNEL_TEMPLATES, ids=[w for w, _ in CHANNEL_TEMPLATES]
)
def test_channel_template_validates(
    where: str, configmap: Resource, crd_schemas: CrdSchemas
) -> None:
    """The Broker's channel template is a NatsJetStreamChannel by the eventing-natss CRD."""
    template = yaml.safe_load(configmap.doc["data"]["channel-template-spec"])
    schema = crd_schemas.get(template.get("apiVersion", ""), template.get("kind", ""))
    assert schema is not None, f"{configmap.where}: no CRD for the channel template's kind"
    label = f"{configmap.label} data['channel-template-spec']"
    problems = validate_against(template, schema, configmap.where, label)
    assert not problems, f"as rendered by {where}:\n{report(problems)}"


# Bad input: a broken Service and Trigger, built here, must be reported by file,
# resource and field path.


def _broken_copy(tmp_path: Path, kind: str, name: str, breaks: list[tuple[list, object]]) -> Path:
    original = next(r for r in RESOURCES if r.kind == kind and r.name == name)
    doc = copy.deepcopy(original.doc)
    doc["metadata"]["name"] = f"broken-{name}"
    for path, value in breaks:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    target = tmp_path / f"broken-{name}.yaml"
    target.write_text(yaml.safe_dump(doc))
    return target


def test_broken_service_is_reported_by_file_resource_and_field(
    tmp_path: Path, crd_schemas: CrdSchemas
) -> None:
    spec = ["spec", "template", "spec"]
    path = _broken_copy(
        tmp_path,
        "Service",
        "transformer",
        [
            ([*spec, "containerConcurrency"], "one"),
            ([*spec, "containers", 0, "readinessProbe", "httpGet", "path"], 8080),
            ([*spec, "containers", 0, "resourses"], {"limits": {"memory": "1Gi"}}),
        ],
    )
    (resource,), _ = load_file(path)
    text = report(validate_resource(resource, crd_schemas))
    lines = text.splitlines()
    assert len(lines) == 3, text
    for line in lines:
        assert line.startswith(f"{path.as_posix()}: Service/tarn/broken-transformer: "), line
    assert "spec.template.spec.containerConcurrency: 'one' is not of type 'integer'" in text
    assert (
        "spec.template.spec.containers[0].readinessProbe.httpGet.path: 8080 is not of type" in text
    )
    assert "spec.template.spec.containers[0].resourses: unknown field" in text


def test_broken_trigger_is_reported_by_file_resource_and_field(
    tmp_path: Path, crd_schemas: CrdSchemas
) -> None:
    path = _broken_copy(
        tmp_path,
        "Trigger",
        "detector-batch-normalized",
        [
            (["spec", "delivery", "retry"], "five"),
            (["spec", "subscriber", "ref", "name"], ["detector"]),
            (["metadata", "lables"], {"team": "secops"}),
        ],
    )
    (resource,), _ = load_file(path)
    text = report(validate_resource(resource, crd_schemas))
    where = f"{path.as_posix()}: Trigger/tarn/broken-detector-batch-normalized: "
    assert f"{where}spec.delivery.retry: 'five' is not of type 'integer'" in text, text
    assert f"{where}spec.subscriber.ref.name: ['detector'] is not of type 'string'" in text, text
    assert f"{where}metadata.lables: unknown field (not in the schema)" in text, text


def test_broken_core_kind_is_reported_by_file_resource_and_field(tmp_path: Path) -> None:
    pod = ["spec", "jobTemplate", "spec", "template", "spec"]
    path = _broken_copy(
        tmp_path, "CronJob", "maintenance", [([*pod, "containers", 0, "comand"], ["tarn"])]
    )
    (resource,), _ = load_file(path)
    text = report(validate_resource(resource, None))
    assert text == (
        f"{path.as_posix()}: CronJob/tarn/broken-maintenance: "
        "spec.jobTemplate.spec.template.spec.containers[0].comand: unknown field (not in the schema)"
    )


def test_bad_name_is_reported(tmp_path: Path) -> None:
    path = _broken_copy(tmp_path, "ConfigMap", "tarn-env", [])
    text = path.read_text().replace("name: broken-tarn-env", "name: Tarn_Env")
    path.write_text(text)
    (resource,), _ = load_file(path)
    assert "ConfigMap/tarn/Tarn_Env: metadata.name: 'Tarn_Env' is not a DNS-1123 label" in report(
        validate_resource(resource, None)
    )
