"""tarn's errors. Each names what went wrong and what to do about it."""

from __future__ import annotations

from pathlib import Path


class TarnError(Exception):
    """Base of every error tarn raises on purpose."""


class ConfigError(TarnError):
    """The configuration (tarn.yaml, TARN_* variables) is invalid."""


class ProcessStartError(TarnError):
    """A server or function process did not start; carries its log tail and the fix."""

    def __init__(self, name: str, why: str, log_file: Path, fix: str = "") -> None:
        from tarn._proc import log_tail

        self.name = name
        self.log_file = log_file
        msg = f"{name} failed to start: {why}.\n--- last lines of {log_file} ---\n{log_tail(log_file)}"
        if fix:
            msg += f"\n--- fix ---\n{fix}"
        super().__init__(msg)


class UnknownLogSourceError(TarnError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown log source {name!r}; known log sources: {', '.join(self.known)}")


class PayloadTooLargeError(TarnError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"request body exceeds the limit of {limit} bytes (after decompression); "
            "split the upload or raise ingest.max_body_bytes"
        )


class QueryError(TarnError):
    """The SQL engine rejected a query; the message carries the engine's own words."""


class DetectionError(TarnError):
    """A detection folder is invalid (bad YAML, missing detect())."""
