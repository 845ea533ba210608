"""Local processes that tarn starts and stops itself: pid files, log files, readiness.

A process is started in its own session so that stopping it (by the pid in its pid file,
never by matching a name) also stops the children it spawned (e.g. gunicorn workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tarn.exceptions import ProcessStartError

# Popen objects of the children start() left running. Holding them keeps Popen.__del__ from
# warning (ResourceWarning, an error under pytest's filterwarnings) when a caller in the same
# process drops them, and lets stop() reap the child through its own Popen.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Managed:
    """A process tarn owns, identified by its pid file."""

    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); treat it as gone. But a process whose main
    # thread has exited while its other threads still run (a JVM shutting down) also shows "Z":
    # it is alive until its thread count drops to one; it cannot be reaped before that.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" or int(fields[17]) > 1:
            return True
    except (FileNotFoundError, IndexError, ValueError):
        return False
    _reap(pid)  # a dead child of ours: collect it now, so no zombie (or Popen) outlives it
    return False


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(
    proc: Managed,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    fix: str = "",
) -> int:
    """Start `argv` detached, record its pid, wait until `ready()`; return the pid.

    If it is already running (pid file names a live process) nothing is started.
    On failure the error carries the log tail and `fix`.
    """
    existing = proc.pid()
    if existing is not None:
        return existing
    proc.run_dir.mkdir(parents=True, exist_ok=True)
    proc.log_dir.mkdir(parents=True, exist_ok=True)
    with open(proc.log_file, "ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    proc.pid_file.write_text(f"{child.pid}\n")
    _CHILDREN[child.pid] = child
    deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            _CHILDREN.pop(child.pid, None)
            proc.pid_file.unlink(missing_ok=True)
            raise ProcessStartError(
                proc.name, f"exited with code {child.returncode}", proc.log_file, fix
            )
        if ready is None or ready():
            return child.pid
        if time.monotonic() > deadline:
            stop(proc)
            raise ProcessStartError(
                proc.name, f"not ready after {timeout:.0f}s", proc.log_file, fix
            )
        time.sleep(0.05)


def stop(proc: Managed, timeout: float = 10.0) -> bool:
    """Stop the process named by the pid file (and its process group). True if one was running."""
    pid = proc.pid()
    if pid is None:
        proc.pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (pid_alive(pid) or _group_alive(pid)) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid) or _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while (pid_alive(pid) or _group_alive(pid)) and time.monotonic() < deadline + 5:
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    proc.pid_file.unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in the process group `pgid`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill(proc: Managed) -> None:
    """SIGKILL the process group at once, as a crash would (used by fault tests)."""
    pid = proc.pid()
    if pid is not None:
        _signal_group(pid, signal.SIGKILL)
        while pid_alive(pid) or _group_alive(pid):
            _reap(pid)
            time.sleep(0.02)
        _reap(pid)
    proc.pid_file.unlink(missing_ok=True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        # start() made the child a session leader, so its pid is its process group id.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
