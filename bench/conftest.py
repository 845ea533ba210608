"""Benchmarks write their figures to bench/results.json (merged, one key per benchmark)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).parent / "results.json"


@pytest.fixture
def record_result():
    def record(name: str, figures: dict[str, Any]) -> None:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data[name] = {**figures, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        data["_machine"] = {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
        }
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"\n{name}: {json.dumps(figures)}")

    return record
