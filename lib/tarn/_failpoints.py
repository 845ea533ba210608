"""Test hooks: pause a process at a named point so a test can kill it exactly there."""

from __future__ import annotations

import os
import time
from pathlib import Path


def failpoint(name: str) -> None:
    """Pause (for an hour) when TARNTEST_PAUSE_AT names this point; a no-op otherwise."""
    if os.environ.get("TARNTEST_PAUSE_AT") == name:
        marker = os.environ.get("TARNTEST_PAUSE_MARKER")
        if marker:
            Path(marker).write_text(str(os.getpid()))
        time.sleep(3600)
