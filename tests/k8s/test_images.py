"""The Dockerfile, .dockerignore and skaffold.yaml agree, and the image is locked down."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from typing import Any

import pytest
import yaml

from ._manifests import KUSTOMIZATION, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
FROM = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE | re.MULTILINE)
PINNED_PYTHON = re.compile(r"python:3\.11\.\d+-slim(-[a-z]+)?")


def _stages() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2) or "") for m in FROM.finditer(DOCKERFILE)]


def _skaffold() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def _builds() -> list[tuple[str, dict[str, Any]]]:
    config = _skaffold()
    out = [("default", a) for a in config["build"]["artifacts"]]
    for profile in config.get("profiles", []):
        out += [(profile["name"], a) for a in (profile.get("build") or {}).get("artifacts", [])]
    return out


def test_base_image_is_pinned_and_slim() -> None:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert match and PINNED_PYTHON.fullmatch(match.group(1)), (
        "pin the base image to an exact Python 3.11 patch release of a slim image"
    )
    names = {stage for _, stage in _stages()}
    for image, _ in _stages():
        assert image == "${PYTHON_IMAGE}" or image in names, f"FROM {image}: not the pinned base"


def test_runtime_is_the_default_target_and_runs_as_non_root() -> None:
    stages = _stages()
    assert stages[-1][1] == "runtime", "the last stage (a plain `docker build`) must be runtime"
    users = re.findall(r"^USER\s+(\S+)\s*$", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0].isdigit(), "USER must be numeric (runAsNonRoot)"
    assert int(users[-1].split(":")[0]) != 0


def test_image_serves_the_function_named_by_the_build_argument() -> None:
    assert re.search(r"^ARG FUNCTION$", DOCKERFILE, re.MULTILINE)
    assert "COPY functions/${FUNCTION}/ /app/function/" in DOCKERFILE
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1)) == [
        "functions-framework",
        "--target",
        "handle",
        "--source",
        "/app/function/main.py",
        "--port",
        "8080",
    ]


def test_build_stage_copies_what_the_package_is_built_from() -> None:
    """pyproject.toml force-includes folders into the wheel; the build fails without them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {p.split("/")[0] for p in wheel["packages"]} | set(wheel.get("force-include", {}))
    needed.add(pyproject["project"]["readme"])
    build = DOCKERFILE.split(" AS build", 1)[1].split("\nFROM ", 1)[0]
    copied = {
        src.rstrip("/")
        for line in re.findall(r"^COPY (.+)$", build, re.MULTILINE)
        for src in line.split()[:-1]
    }
    assert needed <= copied, f"the build stage does not COPY {sorted(needed - copied)}"


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore should allow-list the build inputs"
    sources = set()
    for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.MULTILINE):
        sources |= {s.split("/")[0] for s in line.split()[:-1] if not s.startswith("--")}
    for source in sorted(sources):
        kept = False
        for rule in rules:
            negated, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(source, pattern):
                kept = negated
        assert kept, f".dockerignore drops {source}, which the Dockerfile copies"


@pytest.mark.parametrize(
    ("profile", "artifact"), _builds(), ids=lambda x: str(x) if isinstance(x, str) else x["image"]
)
def test_artifact_builds_from_the_dockerfile(profile: str, artifact: dict[str, Any]) -> None:
    docker = artifact["docker"]
    assert (ROOT / artifact.get("context", ".") / docker["dockerfile"]).is_file()
    stages = {stage for _, stage in _stages()}
    expected = "dev" if profile == "dev" else "runtime"
    assert docker.get("target") == expected and expected in stages, artifact["image"]
    function = docker["buildArgs"]["FUNCTION"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", function)


def test_dev_profile_syncs_python_sources() -> None:
    config = _skaffold()
    (dev,) = [p for p in config["profiles"] if p["name"] == "dev"]
    assert {"command": "dev"} in dev["activation"]
    for artifact in dev["build"]["artifacts"]:
        function = artifact["docker"]["buildArgs"]["FUNCTION"]
        rules = {(r["src"], r["dest"], r.get("strip")) for r in artifact["sync"]["manual"]}
        assert (f"functions/{function}/**/*.py", "/app/function", f"functions/{function}/") in rules
        assert ("lib/tarn/**/*.py", "/app", None) in rules


def test_skaffold_deploys_the_overlays() -> None:
    config = _skaffold()
    assert config["manifests"]["kustomize"]["paths"] == ["knative/overlays/prod"]
    (dev,) = [p for p in config["profiles"] if p["name"] == "dev"]
    assert dev["manifests"]["kustomize"]["paths"] == ["knative/overlays/dev"]
    for path in ("knative/overlays/prod", "knative/overlays/dev"):
        assert (ROOT / path / KUSTOMIZATION).is_file()
    default_images = [a["image"] for a in config["build"]["artifacts"]]
    dev_images = [a["image"] for a in dev["build"]["artifacts"]]
    assert len(set(default_images)) == len(default_images)
    assert sorted(default_images) == sorted(dev_images), "the dev profile must build every image"
