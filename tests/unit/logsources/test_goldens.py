"""Every built-in log source's samples normalize to their goldens (tarn logsources test)."""

from __future__ import annotations

import pytest

from tarn import logsources
from tarn.logsources import golden


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name in logsources.builtin_names():
        folder = logsources.BUILTIN_DIR / name / "samples"
        samples = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        cases.extend(
            (name, s)
            for s in samples
            if not s.startswith(".") and not s.upper().startswith("README")
        )
        if not samples:
            cases.append((name, ""))
    return cases


@pytest.mark.parametrize(("name", "sample"), _cases())
def test_golden(name: str, sample: str) -> None:
    source = logsources.builtin(name)
    assert sample, f"{name} has no samples: add raw logs under {source.path / 'samples'}"
    result = golden.check(source, source.path / "samples" / sample)
    assert result.ok, result.detail


def test_every_builtin_source_loads() -> None:
    ok, failed = logsources.load_all()
    assert not failed, "\n".join(str(e) for e in failed.values())
    assert "aws_cloudtrail" in ok
