"""Shared plumbing for the local service stack: directories, ports, credentials, errors."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tarn._proc import Managed, port_open
from tarn.exceptions import TarnError

HOST = "127.0.0.1"

Progress = Callable[[str], None]

# Default ports: unusual numbers so the stack does not collide with a system PostgreSQL,
# a MinIO or a Trino that someone already runs on the standard ports.
DEFAULT_PORTS: dict[str, int] = {
    "nats": 14222,
    "postgres": 15432,
    "minio": 19000,
    "minio_console": 19001,
    "trino": 18080,
}


class ServiceError(TarnError):
    """A service of the local stack cannot be provided: says what is missing and how to fix it."""

    def __init__(self, what: str, fix: str = "", log_tail: str = "") -> None:
        self.what = what
        self.fix = fix
        self.parts: list[ServiceError] = []  # set when this error lists several
        msg = what
        if log_tail:
            msg += f"\n--- output ---\n{log_tail}"
        if fix:
            msg += f"\n--- fix ---\n{fix}"
        super().__init__(msg)


class PortInUseError(ServiceError):
    """A port the stack needs is taken by a process tarn did not start."""


class MissingPrerequisiteError(ServiceError):
    """A tool the stack needs (Go, Maven, Java, PostgreSQL's binaries, nats-server) is not installed."""


def combine(errors: Sequence[ServiceError]) -> ServiceError:
    """One error that lists several (a missing-tool error when each of them is one)."""
    flat: list[ServiceError] = []
    for e in errors:
        flat.extend(e.parts or [e])
    errors = flat
    if len(errors) == 1:
        return errors[0]
    cls = (
        MissingPrerequisiteError
        if all(isinstance(e, MissingPrerequisiteError) for e in errors)
        else ServiceError
    )
    combined = cls(f"{len(errors)} problems:\n\n" + "\n\n".join(str(e) for e in errors))
    combined.parts = list(errors)
    return combined


def _quiet(_: str) -> None:
    pass


def say(progress: Progress | None) -> Progress:
    return progress if progress is not None else _quiet


def default_state_dir() -> Path:
    env = os.environ.get("TARN_SERVICES_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tarn" / "services"


def cache_dir() -> Path:
    """Where downloads and builds are kept between runs (shared by every state dir)."""
    env = os.environ.get("TARN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tarn"


@dataclass(frozen=True)
class Layout:
    """Paths under a state dir."""

    root: Path

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def config_file(self) -> Path:
        return self.root / "services.json"

    @property
    def env_file(self) -> Path:
        return self.root / "tarn-services.env"

    def managed(self, name: str) -> Managed:
        return Managed(name, self.run_dir, self.log_dir)

    def data(self, name: str) -> Path:
        return self.root / name


# A word that the command line of each service's recorded process contains.
MARKERS = {"nats": "nats-server", "postgres": "postgres", "minio": "minio", "trino": "trino"}


def forget_stale(layout: Layout, name: str) -> None:
    """Drop a pid file whose pid now belongs to some other program (the pid was reused)."""
    proc = layout.managed(name)
    pid = proc.pid()
    if pid is None:
        return
    try:
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return
    if MARKERS[name] not in cmdline:
        proc.pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise provisioning between processes (two `up`s at once, parallel test runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Credentials:
    minio_user: str
    minio_password: str
    postgres_user: str
    postgres_password: str


def load_credentials(layout: Layout) -> Credentials:
    """Credentials from the environment, else those generated at the first `up` (kept 0600)."""
    stored: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        stored = json.loads(layout.credentials_file.read_text())
    generated = {
        "minio_user": "tarn" + secrets.token_hex(4),
        "minio_password": secrets.token_urlsafe(24),
        "postgres_user": "tarn",
        "postgres_password": secrets.token_urlsafe(24),
    }
    env_names = {
        "minio_user": "TARN_SERVICES__MINIO_USER",
        "minio_password": "TARN_SERVICES__MINIO_PASSWORD",
        "postgres_password": "TARN_SERVICES__POSTGRES_PASSWORD",
    }
    values = {**generated, **stored}
    values["postgres_user"] = "tarn"
    if not stored or any(k not in stored for k in generated):
        write_private(layout.credentials_file, json.dumps(values, indent=2) + "\n")
    for key, env in env_names.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    if len(values["minio_user"]) < 3 or len(values["minio_password"]) < 8:
        raise ServiceError(
            "MinIO needs a root user of at least 3 and a password of at least 8 characters",
            "set TARN_SERVICES__MINIO_USER / TARN_SERVICES__MINIO_PASSWORD accordingly, or unset them "
            "to use generated credentials",
        )
    return Credentials(**values)


def resolve_ports(layout: Layout, running: Mapping[str, bool]) -> dict[str, int]:
    """Ports: TARN_SERVICES__<NAME>_PORT, else the defaults; a running service keeps its port."""
    stored: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        stored = {k: int(v) for k, v in json.loads(layout.config_file.read_text())["ports"].items()}
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        env = f"TARN_SERVICES__{name.upper()}_PORT"
        raw = os.environ.get(env)
        if raw:
            try:
                wanted = int(raw)
            except ValueError:
                raise ServiceError(
                    f"{env}={raw!r} is not a port number", f"set {env} to a free TCP port"
                ) from None
        else:
            wanted = default
        service = "minio" if name == "minio_console" else name
        # A running MinIO publishes bucket events to the NATS port it was started with.
        pinned = running.get(service) or (service == "nats" and running.get("minio"))
        if pinned and name in stored and stored[name] != wanted:
            if raw:
                busy = service if running.get(service) else "minio (publishing to nats there)"
                raise ServiceError(
                    f"{busy} is already running on port {stored[name]}, but {env} asks for {wanted}",
                    f"stop the stack first with `tarn services down` (state dir {layout.root})",
                )
            wanted = stored[name]
        ports[name] = wanted
    return ports


def stored_ports(layout: Layout) -> dict[str, int]:
    """The ports the last `up` of this state dir used (the defaults when there was none)."""
    ports = dict(DEFAULT_PORTS)
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        ports.update(
            {k: int(v) for k, v in json.loads(layout.config_file.read_text())["ports"].items()}
        )
    return ports


def save_ports(layout: Layout, ports: Mapping[str, int]) -> None:
    data: dict[str, object] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        data = json.loads(layout.config_file.read_text())
    data["ports"] = dict(ports)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.config_file.write_text(json.dumps(data, indent=2) + "\n")


def ensure_port_free(service: str, port: int, env_hint: str) -> None:
    if port_open(HOST, port):
        raise PortInUseError(
            f"{service} cannot start: port {HOST}:{port} is already in use by a process that this "
            "state dir did not start",
            f"stop that process (see `ss -ltnp 'sport = :{port}'`), or give {service} another port "
            f"with {env_hint}=<port>",
        )


def venv_bin(name: str) -> Path:
    return Path(sys.executable).parent / name


def run(
    argv: Sequence[str],
    *,
    what: str,
    fix: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float | None = None,
) -> str:
    """Run a setup command to completion; on failure raise ServiceError with its output and `fix`."""
    try:
        res = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ServiceError(f"{what}: {argv[0]} not found", fix) from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        raise ServiceError(f"{what}: timed out after {timeout:.0f}s", fix, _tail(out)) from None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            fh.write(f"$ {' '.join(argv)}\n{res.stdout}\n")
    if res.returncode != 0:
        raise ServiceError(
            f"{what}: `{' '.join(argv)}` exited with code {res.returncode}", fix, _tail(res.stdout)
        )
    return res.stdout


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
