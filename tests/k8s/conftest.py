"""Fixtures of the manifest checks: the CRD schemas, the rendered kustomizations."""

from __future__ import annotations

import pytest

from ._manifests import ROOT, Rendered, render
from ._schemas import CRD_DIR, CrdSchemas, in_ci, load_crds


@pytest.fixture(scope="session")
def crd_schemas() -> CrdSchemas:
    """The CRD schemas; skipped, with the reason, only off CI where ../shared is absent."""
    if not CRD_DIR.is_dir():
        where = "../shared/k8s-schemas/crds (beside the project's folder)"
        if in_ci():
            pytest.fail(f"CI must have the CRD schemas at {where}, and they are missing")
        pytest.skip(
            f"CRD schemas not found at {where}: custom resources are not validated in this "
            "checkout (CI has them and never skips)"
        )
    return load_crds(CRD_DIR)


@pytest.fixture(scope="session")
def base() -> Rendered:
    rendered = render(ROOT / "knative" / "base")
    assert not rendered.problems, "\n".join(map(str, rendered.problems))
    return rendered


@pytest.fixture(scope="session")
def secrets() -> Rendered:
    rendered = render(ROOT / "knative" / "secrets")
    assert not rendered.problems, "\n".join(map(str, rendered.problems))
    return rendered
