"""PostgreSQL from the distribution's package, one cluster in a data directory tarn owns.

initdb and postgres refuse to run as root, so when tarn runs as root the cluster belongs to the
`postgres` OS user (created by Debian's package) and its processes run through `runuser`. That
user must be able to reach the data directory: when the state dir lies under a directory it
cannot enter (a 0700 home such as /root), the cluster lives under /var/lib/tarn/postgres/<id>
instead and the state dir keeps a symlink to it.

Only the Unix socket (in a 0700 directory of the cluster's owner) trusts local connections;
TCP on 127.0.0.1 requires the password (scram-sha-256).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

from tarn import _proc
from tarn.services._common import (
    HOST,
    Credentials,
    Layout,
    MissingPrerequisiteError,
    Progress,
    ServiceError,
    ensure_port_free,
    run,
)

NAME = "postgres"
DATABASE = "tarn"
OS_USER = "postgres"
EXTERNAL_ROOT = Path("/var/lib/tarn/postgres")
INSTALL_FIX = (
    "install the PostgreSQL server: on Debian/Ubuntu `sudo apt-get update && sudo apt-get install -y "
    "postgresql` (tarn looks for initdb and postgres in /usr/lib/postgresql/<version>/bin and on PATH)"
)


def _is_root() -> bool:
    return os.geteuid() == 0


def _bin_dirs() -> list[Path]:
    found: list[tuple[int, Path]] = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        with contextlib.suppress(ValueError):
            found.append((int(d.parent.name), d))
    dirs = [d for _, d in sorted(found, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        dirs.append(Path(initdb).resolve().parent)
    return [d for d in dirs if (d / "initdb").exists() and (d / "postgres").exists()]


def bin_dir(pgdata: Path | None = None) -> Path | None:
    dirs = _bin_dirs()
    if pgdata is not None:
        with contextlib.suppress(OSError):
            major = (pgdata / "PG_VERSION").read_text().strip()
            for d in dirs:
                if _major(d) == major:
                    return d
    return dirs[0] if dirs else None


def _major(d: Path) -> str:
    if d.parent.parent == Path("/usr/lib/postgresql"):
        return d.parent.name
    out = run([str(d / "postgres"), "--version"], what="postgres --version", fix=INSTALL_FIX)
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return m.group(1) if m else "?"


def version() -> str:
    d = bin_dir()
    return _major(d) if d else "not installed"


def ensure_installed(progress: Progress) -> tuple[Path, float]:
    """The server binaries' directory (installing Debian's package when missing), and seconds spent."""
    d = bin_dir()
    if d is not None:
        return d, 0.0
    if not _is_root():
        raise MissingPrerequisiteError(
            "PostgreSQL server binaries (initdb, postgres) are not installed", INSTALL_FIX
        )
    if shutil.which("apt-get") is None:
        raise MissingPrerequisiteError(
            "PostgreSQL server binaries (initdb, postgres) are not installed and apt-get is not available",
            "install PostgreSQL (13 or newer) with your package manager so that initdb and postgres are "
            "in /usr/lib/postgresql/<version>/bin or on PATH",
        )
    t0 = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    progress(
        "postgres: server binaries missing, installing Debian's package: apt-get install -y postgresql"
    )
    try:
        run(
            ["apt-get", "install", "-y", "postgresql"],
            what="apt-get install postgresql",
            fix=INSTALL_FIX,
            env=env,
        )
    except ServiceError:
        progress(
            "postgres: apt-get install failed, refreshing the package lists (apt-get update) and retrying"
        )
        run(["apt-get", "update"], what="apt-get update", fix=INSTALL_FIX, env=env)
        run(
            ["apt-get", "install", "-y", "postgresql"],
            what="apt-get install postgresql",
            fix=INSTALL_FIX,
            env=env,
        )
    d = bin_dir()
    if d is None:
        raise MissingPrerequisiteError(
            "apt-get installed postgresql but initdb/postgres are still not found", INSTALL_FIX
        )
    took = time.monotonic() - t0
    progress(f"postgres: installed PostgreSQL {_major(d)} in {took:.0f}s")
    return d, took


# --- where the cluster lives -------------------------------------------------------------------


def _owner() -> pwd.struct_passwd | None:
    """The OS user the server runs as: `postgres` when tarn runs as root, else tarn's own user."""
    if not _is_root():
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise MissingPrerequisiteError(
            f"tarn runs as root, and PostgreSQL refuses to run as root, but there is no `{OS_USER}` OS user "
            "to run it as",
            "install Debian's postgresql package (it creates that user): `apt-get install -y postgresql`, "
            f"or create a system user `{OS_USER}`, or run tarn as a non-root user",
        ) from None


def _as_owner(argv: list[str]) -> list[str]:
    if _is_root():
        return ["runuser", "-u", OS_USER, "--", *argv]
    return argv


def _chown_tree(path: Path, owner: pwd.struct_passwd | None) -> None:
    if owner is None:
        return
    for p in [path, *path.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            os.lchown(p, owner.pw_uid, owner.pw_gid)


def _owner_can_write(path: Path) -> bool:
    if not _is_root():
        return True
    try:
        run(
            _as_owner(["test", "-w", str(path), "-a", "-x", str(path)]), what="access check", fix=""
        )
        return True
    except ServiceError:
        return False


def cluster_root(layout: Layout, *, create: bool) -> Path:
    """The directory holding the cluster (data/ and socket/), owned by the server's OS user."""
    link = layout.data(NAME) / "cluster"
    if link.is_symlink() or link.is_dir():
        return link.resolve()
    if not create:
        return link
    owner = _owner()
    local = link
    local.mkdir(parents=True, exist_ok=True)
    os.chmod(local, 0o700)
    _chown_tree(local, owner)
    if _owner_can_write(local):
        return local
    # The server's user cannot enter the state dir (e.g. it is under a 0700 home): keep the
    # cluster where that user can reach it, and point the state dir at it.
    local.rmdir()
    ident = hashlib.sha256(str(layout.root.resolve()).encode()).hexdigest()[:16]
    external = EXTERNAL_ROOT / ident
    EXTERNAL_ROOT.mkdir(parents=True, exist_ok=True)
    for p in (EXTERNAL_ROOT.parent, EXTERNAL_ROOT):
        os.chmod(p, 0o755)
    external.mkdir(exist_ok=True)
    os.chmod(external, 0o700)
    _chown_tree(external, owner)
    link.symlink_to(external, target_is_directory=True)
    return external


def _socket_dir(root: Path) -> Path:
    sock = root / "socket"
    # A Unix socket path is limited to 107 bytes; fall back to a short private directory.
    if len(str(sock / ".s.PGSQL.65535")) > 100:
        ident = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        sock = Path(tempfile.gettempdir()) / f"tarn-pg-{ident}"
    return sock


# --- lifecycle ---------------------------------------------------------------------------------


def _initdb(bindir: Path, pgdata: Path, log: Path, progress: Progress) -> None:
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists():
        shutil.rmtree(pgdata)  # an initdb that died halfway
    owner = _owner()
    pgdata.mkdir(mode=0o700)
    _chown_tree(pgdata, owner)
    progress(f"postgres: creating a new cluster in {pgdata}")
    run(
        _as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        ),
        what="initdb",
        fix=f"see the output above; remove {pgdata} to start over",
        log=log,
    )


def start(layout: Layout, port: int, creds: Credentials, progress: Progress) -> int:
    proc = layout.managed(NAME)
    root = cluster_root(layout, create=True)
    pgdata = root / "data"
    bindir = bin_dir(pgdata if (pgdata / "PG_VERSION").exists() else None)
    if bindir is None:
        raise MissingPrerequisiteError(
            "PostgreSQL server binaries (initdb, postgres) are not installed", INSTALL_FIX
        )
    if (pgdata / "PG_VERSION").exists() and (
        major := (pgdata / "PG_VERSION").read_text().strip()
    ) != _major(bindir):
        raise ServiceError(
            f"the cluster in {pgdata} is PostgreSQL {major}, but only PostgreSQL {_major(bindir)} is installed",
            f"install postgresql-{major}, or discard the cluster with `tarn services down --purge`",
        )
    if not proc.running():
        ensure_port_free(NAME, port, "TARN_SERVICES__POSTGRES_PORT")
        layout.log_dir.mkdir(parents=True, exist_ok=True)
        _initdb(bindir, pgdata, layout.log_dir / "postgres-initdb.log", progress)
        sock = _socket_dir(root)
        sock.mkdir(mode=0o700, exist_ok=True)
        _chown_tree(sock, _owner())
        # A server killed hard leaves postmaster.pid behind; postgres itself checks whether that pid
        # is still a postgres and starts anyway when it is not.
        argv = _as_owner(
            [
                str(bindir / "postgres"),
                "-D",
                str(pgdata),
                "-c",
                f"listen_addresses={HOST}",
                "-c",
                f"port={port}",
                "-c",
                f"unix_socket_directories={sock}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
            ]
        )
        _proc.start(
            proc,
            argv,
            ready=lambda: _can_connect(sock, port),
            timeout=60,
            fix=(
                f"read the log above; if port {port} is taken, free it or set TARN_SERVICES__POSTGRES_PORT; "
                f"if the cluster in {pgdata} is damaged, discard it with `tarn services down --purge`"
            ),
        )
    _provision(_socket_dir(root), port, creds)
    return proc.pid() or 0


def _can_connect(sock: Path, port: int) -> bool:
    import psycopg2

    try:
        psycopg2.connect(
            host=str(sock), port=port, user="postgres", dbname="postgres", connect_timeout=2
        ).close()
        return True
    except psycopg2.OperationalError:
        return False


def _provision(sock: Path, port: int, creds: Credentials) -> None:
    """Create (or update) tarn's role and database; idempotent."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(
        host=str(sock), port=port, user="postgres", dbname="postgres", connect_timeout=5
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            role = sql.Identifier(creds.postgres_user)
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (creds.postgres_user,))
            verb = sql.SQL("ALTER ROLE") if cur.fetchone() else sql.SQL("CREATE ROLE")
            cur.execute(
                sql.SQL("{} {} WITH LOGIN PASSWORD %s").format(verb, role),
                (creds.postgres_password,),
            )
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), role)
                )
    finally:
        conn.close()
    # The password login over TCP is what tarn, pyiceberg and Trino use: check it works.
    try:
        psycopg2.connect(
            host=HOST,
            port=port,
            user=creds.postgres_user,
            password=creds.postgres_password,
            dbname=DATABASE,
            connect_timeout=5,
        ).close()
    except psycopg2.OperationalError as exc:
        raise ServiceError(
            f"PostgreSQL on {HOST}:{port} refuses tarn's login: {str(exc).strip()}",
            "check TARN_SERVICES__POSTGRES_PASSWORD, or run `tarn services down` and `tarn services up` again",
        ) from None


def stop(layout: Layout) -> bool:
    proc = layout.managed(NAME)
    root = cluster_root(layout, create=False)
    pid_file = root / "data" / "postmaster.pid"
    ours = proc.pid()
    if ours is not None:
        # Fast shutdown (SIGINT): SIGTERM would wait for every client to disconnect. Only signal
        # the postmaster that is ours: runuser's child, or (not root) the process we started.
        with contextlib.suppress(OSError, ValueError, IndexError):
            master = int(pid_file.read_text().splitlines()[0])
            if master != ours and _parent(master) != ours:
                raise ValueError("postmaster.pid names a process that is not ours")
            os.kill(master, signal.SIGINT)
            deadline = time.monotonic() + 30
            while _proc.pid_alive(master) and time.monotonic() < deadline:
                time.sleep(0.05)
    _proc.stop(proc)
    return ours is not None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def purge(layout: Layout) -> None:
    """Delete the cluster when it lives outside the state dir (the state dir itself goes too)."""
    link = layout.data(NAME) / "cluster"
    target = link.resolve()
    sock = _socket_dir(target)
    if link.is_symlink() and target.parent == EXTERNAL_ROOT:
        shutil.rmtree(target, ignore_errors=True)
    if sock.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(sock, ignore_errors=True)
