"""Errors of tarn.logsources. Each names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

from tarn.exceptions import TarnError


class LogSourceError(TarnError):
    """A log source folder is invalid: bad YAML, an unknown ECS field, a missing transform."""

    def __init__(self, file: Path | str, problems: list[str] | str) -> None:
        self.file = Path(file)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.file}:\n{lines}")
