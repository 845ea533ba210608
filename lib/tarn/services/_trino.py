"""Trino, fetched with Maven, with the Iceberg connector only, on a JDBC catalog shared with pyiceberg.

The full `io.trino:trino-server` tarball (about 780 MiB) carries every connector. tarn fetches
`io.trino:trino-server-core` (the server with no connectors, about 185 MiB) and the
`io.trino:trino-iceberg` plugin zip (about 330 MiB) instead, unpacks the core without its few
bundled plugins, and puts the Iceberg plugin in as the only one, so Trino starts faster too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tarn import _proc
from tarn.services._common import (
    HOST,
    Credentials,
    Layout,
    MissingPrerequisiteError,
    Progress,
    ServiceError,
    cache_dir,
    ensure_port_free,
    file_lock,
    human_bytes,
    run,
)

NAME = "trino"
VERSION = "476"
MIN_JAVA = 24  # Trino 476 refuses Java older than 24.0.1
DEFAULT_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
CORE = ("io.trino", "trino-server-core", VERSION, "tar.gz")
ICEBERG = ("io.trino", "trino-iceberg", VERSION, "zip")
JAVA_FIX = (
    f"Trino {VERSION} needs a JDK {MIN_JAVA} or newer: install one (e.g. Eclipse Temurin 25, which "
    f"lives in {DEFAULT_JAVA_HOME}) or point TARN_JAVA_HOME at the JDK's home directory"
)
MVN_FIX = (
    "install Apache Maven so that `mvn` is on PATH (Debian/Ubuntu: `apt-get install -y maven`)"
)

# Heap and JIT settings for a small machine (2 cores, 24 GiB): a 3 GiB heap leaves room for
# PostgreSQL, MinIO, tarn's own processes and the page cache.
JVM_CONFIG = """\
-server
-Xms1G
-Xmx3G
-XX:+UseG1GC
-XX:G1HeapRegionSize=32M
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-XX:+EnableDynamicAgentLoading
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
--enable-native-access=ALL-UNNAMED
--sun-misc-unsafe-memory-access=allow
"""


def java_home() -> Path:
    return Path(os.environ.get("TARN_JAVA_HOME") or DEFAULT_JAVA_HOME)


def check_java() -> Path:
    home = java_home()
    java = home / "bin" / "java"
    if not java.exists():
        raise MissingPrerequisiteError(
            f"no Java at {java} (Trino {VERSION} runs on Java {MIN_JAVA}+)", JAVA_FIX
        )
    out = run([str(java), "-version"], what="java -version", fix=JAVA_FIX)
    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < MIN_JAVA:
        found = m.group(1) if m else "unknown"
        raise MissingPrerequisiteError(
            f"the Java at {home} is version {found}; Trino {VERSION} needs {MIN_JAVA}+", JAVA_FIX
        )
    return home


def home() -> Path:
    """Where the unpacked server (core + Iceberg plugin) lives."""
    return cache_dir() / "trino" / f"trino-server-core-{VERSION}"


def _m2() -> Path:
    return cache_dir() / "m2"


def _artifact_path(coord: tuple[str, str, str, str]) -> Path:
    group, artifact, version, ext = coord
    return _m2().joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.{ext}")


@dataclass
class Fetch:
    seconds_download: float = 0.0
    seconds_unpack: float = 0.0
    bytes_download: int = 0
    bytes_unpacked: int = 0


def ensure_dist(progress: Progress) -> tuple[Path, Fetch]:
    """The unpacked Trino (downloading and unpacking it on first use)."""
    target = home()
    stats = Fetch()
    if (target / ".tarn-complete").exists():
        return target, stats
    with file_lock(cache_dir() / "locks" / "trino.lock"):
        if (target / ".tarn-complete").exists():
            return target, stats
        t0 = time.monotonic()
        for coord in (CORE, ICEBERG):
            path = _artifact_path(coord)
            if path.exists():
                continue
            mvn = shutil.which("mvn")
            if mvn is None:
                raise MissingPrerequisiteError(
                    f"Trino {VERSION} is not downloaded yet and Maven (`mvn`) is missing", MVN_FIX
                )
            spec = ":".join(coord)
            progress(f"trino: downloading {spec} with Maven (first time only)")
            run(
                [
                    mvn,
                    "-B",
                    "-q",
                    f"-Dmaven.repo.local={_m2()}",
                    "dependency:get",
                    f"-Dartifact={spec}",
                    "-Dtransitive=false",
                ],
                what=f"downloading {spec}",
                fix=(
                    "check that Maven can reach its repository (proxy settings in ~/.m2/settings.xml), then "
                    "run `tarn services up` again"
                ),
                log=cache_dir() / "logs" / "trino-download.log",
            )
            if not path.exists():
                raise ServiceError(f"Maven reported success but {path} is missing", MVN_FIX)
            stats.bytes_download += path.stat().st_size
            progress(f"trino: downloaded {spec} ({human_bytes(path.stat().st_size)})")
        stats.seconds_download = time.monotonic() - t0
        t1 = time.monotonic()
        progress(f"trino: unpacking the server core and the Iceberg plugin into {target}")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _unpack_core(_artifact_path(CORE), staging)
        _unpack_plugin(_artifact_path(ICEBERG), staging / "plugin" / "iceberg")
        (staging / ".tarn-complete").write_text(
            json.dumps({"version": VERSION, "plugins": ["iceberg"]}) + "\n"
        )
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        stats.seconds_unpack = time.monotonic() - t1
        stats.bytes_unpacked = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        progress(
            f"trino: ready in {stats.seconds_download + stats.seconds_unpack:.0f}s "
            f"({human_bytes(stats.bytes_unpacked)} unpacked)"
        )
        return target, stats


def _unpack_core(archive: Path, dest: Path) -> None:
    # Skip the core's own plugins (exchange/spooling filesystems, Python functions, geospatial,
    # authenticators...): none is needed here and each costs startup time.
    with tarfile.open(archive, "r:gz") as tar:
        keep = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 2 or parts[1] == "plugin":
                continue
            member.name = str(Path(*parts[1:]))
            keep.append(member)
        tar.extractall(dest, members=keep, filter="data")
    (dest / "plugin").mkdir(exist_ok=True)


def _unpack_plugin(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) != 2 or ".." in parts:
                continue
            with zf.open(info) as src, open(dest / parts[1], "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


# --- configuration -----------------------------------------------------------------------------


def write_config(
    layout: Layout,
    install: Path,
    ports: dict[str, int],
    creds: Credentials,
    catalog_name: str,
    warehouse: str,
    region: str,
) -> Path:
    base = layout.data(NAME)
    etc = base / "etc"
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    node_id = uuid.uuid5(uuid.NAMESPACE_URL, f"tarn:{layout.root.resolve()}")
    files = {
        etc / "node.properties": (
            "node.environment=tarn\n"
            f"node.id={node_id}\n"
            f"node.data-dir={data_dir}\n"
            f"node.bind-ip={HOST}\n"
            f"node.internal-address={HOST}\n"
        ),
        etc / "jvm.config": JVM_CONFIG + f"-Djava.io.tmpdir={tmp}\n-Djna.tmpdir={tmp}\n",
        etc / "config.properties": (
            "coordinator=true\n"
            "node-scheduler.include-coordinator=true\n"
            f"http-server.http.port={ports['trino']}\n"
            f"discovery.uri=http://{HOST}:{ports['trino']}\n"
            f"plugin.dir={install / 'plugin'}\n"
            "query.max-memory=2GB\n"
            "query.max-memory-per-node=1GB\n"
            "task.concurrency=2\n"
            "catalog.management=static\n"
            # One node on a busy 2-core machine: a missed heartbeat must not mark the only
            # node dead ("No nodes available to run query").
            "failure-detector.enabled=false\n"
        ),
        etc / "log.properties": "io.trino=INFO\n",
        # Same JDBC database and catalog name as tarn's pyiceberg SqlCatalog; native S3 to MinIO.
        # Secrets are read from the environment of the Trino process, not written here.
        etc / "catalog" / "iceberg.properties": (
            "connector.name=iceberg\n"
            "iceberg.catalog.type=jdbc\n"
            f"iceberg.jdbc-catalog.catalog-name={catalog_name}\n"
            "iceberg.jdbc-catalog.driver-class=org.postgresql.Driver\n"
            f"iceberg.jdbc-catalog.connection-url=jdbc:postgresql://{HOST}:{ports['postgres']}/tarn\n"
            f"iceberg.jdbc-catalog.connection-user={creds.postgres_user}\n"
            "iceberg.jdbc-catalog.connection-password=${ENV:TARN_TRINO_JDBC_PASSWORD}\n"
            f"iceberg.jdbc-catalog.default-warehouse-dir={warehouse}\n"
            "iceberg.jdbc-catalog.schema-version=V1\n"
            "iceberg.file-format=PARQUET\n"
            "iceberg.compression-codec=ZSTD\n"
            "fs.native-s3.enabled=true\n"
            f"s3.endpoint=http://{HOST}:{ports['minio']}\n"
            f"s3.region={region}\n"
            "s3.path-style-access=true\n"
            "s3.aws-access-key=${ENV:TARN_TRINO_S3_ACCESS_KEY}\n"
            "s3.aws-secret-key=${ENV:TARN_TRINO_S3_SECRET_KEY}\n"
        ),
    }
    for path, text in files.items():
        path.write_text(text)
        os.chmod(path, 0o600)
    return etc


def _info(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/info", timeout=1) as resp:
            data = json.loads(resp.read())
            return data if isinstance(data, dict) else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _ready(port: int) -> bool:
    info = _info(port)
    if info is None or info.get("starting") is not False:
        return False
    # Started is not yet ready: until the node has registered itself, queries fail with
    # "No nodes available to run query". Ready means a query runs.
    import trino

    try:
        conn = trino.dbapi.connect(host=HOST, port=port, user="tarn-readiness", request_timeout=5)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            return cur.fetchall() == [[1]]
        finally:
            conn.close()
    except Exception:
        return False


def start(
    layout: Layout,
    ports: dict[str, int],
    creds: Credentials,
    catalog_name: str,
    warehouse: str,
    region: str,
    progress: Progress,
) -> int:
    proc = layout.managed(NAME)
    if proc.running():
        return proc.pid() or 0
    jhome = check_java()
    install, _ = ensure_dist(progress)
    port = ports["trino"]
    ensure_port_free(NAME, port, "TARN_SERVICES__TRINO_PORT")
    _clear_launcher_pid(layout.data(NAME) / "data")
    etc = write_config(layout, install, ports, creds, catalog_name, warehouse, region)
    env = {
        **os.environ,
        "JAVA_HOME": str(jhome),
        "PATH": f"{jhome / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "TARN_TRINO_JDBC_PASSWORD": creds.postgres_password,
        "TARN_TRINO_S3_ACCESS_KEY": creds.minio_user,
        "TARN_TRINO_S3_SECRET_KEY": creds.minio_password,
    }
    argv = [
        str(install / "bin" / "launcher"),
        "run",
        f"--etc-dir={etc}",
        f"--data-dir={layout.data(NAME) / 'data'}",
    ]
    progress(f"trino: starting Trino {VERSION} on {HOST}:{port} (usually 15-30s)")
    t0 = time.monotonic()
    pid = _proc.start(
        proc,
        argv,
        env=env,
        ready=lambda: _ready(port),
        timeout=240,
        fix=(
            f"read the log above. If port {port} is taken, free it or set TARN_SERVICES__TRINO_PORT; if Java is "
            f"the problem: {JAVA_FIX}; if the Iceberg catalog fails, check that PostgreSQL "
            f"({HOST}:{ports['postgres']}) and MinIO ({HOST}:{ports['minio']}) are up (`tarn services status`)"
        ),
    )
    progress(f"trino: ready after {time.monotonic() - t0:.0f}s")
    return pid


def _clear_launcher_pid(data_dir: Path) -> None:
    """Trino's launcher refuses to start while its own pid file names a live process, and after a
    reboot or a kill that pid may belong to anything. tarn tracks Trino by its own pid file, so a
    launcher pid file is only respected when it names a running Trino."""
    pid_file = data_dir / "var" / "run" / "launcher.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if _proc.pid_alive(pid) and b"io.trino.server.TrinoServer" in cmdline:
        raise ServiceError(
            f"a Trino that tarn did not record (pid {pid}) still runs on the data dir {data_dir}",
            f"stop it (`kill {pid}`), then run `tarn services up` again",
        )
    pid_file.unlink(missing_ok=True)


def stop(layout: Layout, port: int | None = None) -> bool:
    proc = layout.managed(NAME)
    pid = proc.pid()
    stopped = _proc.stop(proc, timeout=30)
    if pid is not None:
        # The JVM's threads can still be finishing (holding the launcher's lock on
        # data/var/run/launcher.pid and the HTTP port) after its main thread looks gone: wait
        # until the process has disappeared entirely, so a following start does not collide.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            Path(f"/proc/{pid}").exists() or (port is not None and _proc.port_open(HOST, port))
        ):
            time.sleep(0.1)
    return stopped
