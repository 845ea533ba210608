"""Collects every detection's inline `tests:` as pytest items (one per test case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tarn.detection import Record, load_detection, run_query_test


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name == "detection.yml":
        return DetectionFile.from_parent(parent, path=file_path)
    return None


class DetectionFile(pytest.File):
    def collect(self) -> Any:
        det = load_detection(self.path.parent)
        for case in det.tests:
            yield DetectionCase.from_parent(self, name=case["name"], detection=det, case=case)


class DetectionCase(pytest.Item):
    def __init__(self, *, detection: Any, case: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.detection = detection
        self.case = case

    def runtest(self) -> None:
        if "tables" in self.case:  # a scheduled detection: its query on the test's rows
            got = run_query_test(self.detection, self.case)
        else:
            got = self.detection.detect(Record(self.case["record"]))
        if got != self.case["expect"]:
            raise AssertionError(
                f"{self.detection.id}: {self.case['name']}: expected {self.case['expect']}, got {got}"
            )

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.detection.id}: {self.case['name']}"
