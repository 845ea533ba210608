import sys
from pathlib import Path

import pytest

from tarn import _proc
from tarn.exceptions import ProcessStartError


def test_start_records_pid_and_stop_uses_it(tmp_path: Path) -> None:
    proc = _proc.Managed("sleeper", tmp_path / "run", tmp_path / "logs")
    pid = _proc.start(
        proc, [sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(60)"]
    )
    assert proc.pid() == pid and proc.running()
    assert (
        _proc.start(proc, [sys.executable, "-c", "raise SystemExit(1)"]) == pid
    )  # already running: reused
    assert _proc.stop(proc)
    assert not _proc.pid_alive(pid) and not proc.pid_file.exists()
    assert not _proc.stop(proc)


def test_stop_also_stops_the_children(tmp_path: Path) -> None:
    proc = _proc.Managed("parent", tmp_path / "run", tmp_path / "logs")
    child_pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time, pathlib\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(child_pid_file)!r}).write_text(str(c.pid))\n"
        "time.sleep(60)\n"
    )
    _proc.start(proc, [sys.executable, "-c", code], ready=child_pid_file.exists, timeout=10)
    child = int(child_pid_file.read_text())
    _proc.stop(proc)
    assert not _proc.pid_alive(child)


def test_failed_start_reports_log_tail_and_fix(tmp_path: Path) -> None:
    proc = _proc.Managed("broken", tmp_path / "run", tmp_path / "logs")
    with pytest.raises(ProcessStartError) as err:
        _proc.start(
            proc,
            [sys.executable, "-c", "print('port 1 in use'); raise SystemExit(3)"],
            ready=lambda: False,
            fix="free the port",
        )
    text = str(err.value)
    assert "exited with code 3" in text and "port 1 in use" in text and "free the port" in text
    assert not proc.pid_file.exists()


def test_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    proc = _proc.Managed("slow", tmp_path / "run", tmp_path / "logs")
    with pytest.raises(ProcessStartError, match="not ready after"):
        _proc.start(
            proc,
            [sys.executable, "-c", "import time; time.sleep(60)"],
            ready=lambda: False,
            timeout=0.5,
        )
    assert not proc.running()
