"""The kustomize tree holds together, checked without a kustomize binary.

Each kustomization renders (its resource paths exist, its patches apply to resources it
has), every manifest file belongs to one, and the overlays build on the base.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ._manifests import (
    KUSTOMIZATION,
    ROOT,
    Problem,
    apply_json_patch,
    kustomization_dirs,
    load_file,
    rel,
    render,
    report,
    resource_files,
)

DIRS = kustomization_dirs()
OVERLAYS = [d for d in DIRS if d.parent.name == "overlays"]


def test_the_expected_kustomizations_exist() -> None:
    names = {rel(d) for d in DIRS}
    assert {
        "eventing",
        "knative/base",
        "knative/overlays/dev",
        "knative/overlays/prod",
        "knative/secrets",
    } <= names


@pytest.mark.parametrize("directory", DIRS, ids=rel)
def test_kustomization_renders(directory: Path) -> None:
    rendered = render(directory)
    assert not rendered.problems, report(rendered.problems)
    assert rendered.resources, f"{rel(directory)} renders nothing"


def test_every_manifest_file_is_in_a_kustomization() -> None:
    reached: set[str] = set()
    for directory in DIRS:
        reached |= render(directory).files
    orphans = sorted(rel(p) for p in resource_files() if rel(p) not in reached)
    assert not orphans, (
        "not listed in any kustomization.yaml (a Trigger belongs in eventing/kustomization.yaml): "
        + ", ".join(orphans)
    )


@pytest.mark.parametrize("overlay", OVERLAYS, ids=rel)
def test_overlay_builds_on_base(overlay: Path) -> None:
    base = render(ROOT / "knative" / "base")
    rendered = render(overlay)
    assert {r.key for r in rendered.resources} == {r.key for r in base.resources}, (
        f"{rel(overlay)} must include ../../base and add or drop nothing"
    )


def test_base_has_no_secrets() -> None:
    """Secrets are applied by hand once; `skaffold run` must never overwrite them."""
    for directory in DIRS:
        if rel(directory) == "knative/secrets":
            continue
        secrets = render(directory).of_kind("Secret")
        assert not secrets, f"{rel(directory)} renders Secrets: {[s.label for s in secrets]}"


@pytest.mark.parametrize(
    "directory", [ROOT / "knative" / "base", ROOT / "knative" / "secrets"], ids=rel
)
def test_everything_is_in_namespace_tarn(directory: Path) -> None:
    # No kustomize namespace transformer is used: each manifest says its namespace itself.
    for r in render(directory).resources:
        if r.kind == "Namespace":
            assert r.name == "tarn"
        else:
            assert r.namespace == "tarn", f"{r.file}: {r.label}: metadata.namespace must be tarn"


# The offline renderer itself: a wrong patch must be reported, not silently skipped.


def _kustomization(tmp_path: Path, patches: list[dict]) -> Path:
    (tmp_path / "cm.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "tarn"},
                "data": {"k": "v"},
            }
        )
    )
    (tmp_path / KUSTOMIZATION).write_text(
        yaml.safe_dump({"resources": ["cm.yaml", "missing.yaml"], "patches": patches})
    )
    return tmp_path


def test_renderer_reports_missing_resources_and_unmatched_or_failing_patches(
    tmp_path: Path,
) -> None:
    directory = _kustomization(
        tmp_path,
        [
            {"target": {"kind": "ConfigMap", "name": "b"}, "patch": "[]"},
            {
                "target": {"kind": "ConfigMap", "name": "a"},
                "patch": "- {op: replace, path: /data/nope, value: x}",
            },
            {"target": {"kind": "ConfigMap"}, "patch": "kind: ConfigMap"},
        ],
    )
    text = report(render(directory).problems)
    assert "Kustomization: resources[1]: 'missing.yaml' does not exist" in text
    assert "Kustomization: patches[0].target: matches no resource" in text
    assert (
        "ConfigMap/tarn/a: (whole resource): op 0 (replace /data/nope): /data/nope does not exist"
        in text
    )
    assert "is not a JSON 6902 patch" in text


def test_json_patch_ops() -> None:
    doc = {"a": {"b/c": "1", "l": [1, 2]}}
    ops = [
        {"op": "replace", "path": "/a/b~1c", "value": "2"},
        {"op": "add", "path": "/a/l/-", "value": 3},
        {"op": "add", "path": "/a/l/0", "value": 0},
        {"op": "remove", "path": "/a/l/1"},
        {"op": "add", "path": "/a/new", "value": {"x": 1}},
    ]
    assert apply_json_patch(doc, ops) == {"a": {"b/c": "2", "l": [0, 2, 3], "new": {"x": 1}}}
    assert doc == {"a": {"b/c": "1", "l": [1, 2]}}


def test_unsupported_kustomization_fields_are_named(tmp_path: Path) -> None:
    (tmp_path / KUSTOMIZATION).write_text(yaml.safe_dump({"resources": [], "namePrefix": "x-"}))
    problems: list[Problem] = render(tmp_path).problems
    assert [p.path for p in problems] == ["namePrefix"]


def test_load_file_names_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    resources, problems = load_file(bad)
    assert not resources
    assert "not valid YAML" in problems[0].message


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.parametrize("directory", DIRS, ids=rel)
def test_offline_render_matches_kustomize(directory: Path) -> None:
    """Where a real kustomize is at hand (kubectl has one built in), it must agree."""
    command = _kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is on PATH: nothing to cross-check against")
    done = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    theirs = {
        (d["apiVersion"], d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in yaml.safe_load_all(done.stdout)
        if d
    }
    ours = {
        (r.api_version, r.kind, r.namespace, r.name): r.doc for r in render(directory).resources
    }
    assert sorted(ours) == sorted(theirs)
    for key, doc in ours.items():
        assert doc == theirs[key], f"{rel(directory)}: {key} differs from {' '.join(command)}"
