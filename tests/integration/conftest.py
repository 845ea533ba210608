"""A whole embedded stack (nats-server, broker, every function) as real processes, per module."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarn import _proc, config, services, watch
from tarn.broker import load_triggers
from tarn.cli import post_ingest
from tarn.config import Config
from tarn.devstack import FUNCTIONS, DevStack
from tarn.services import MissingPrerequisiteError
from tarn.webhook_receiver import WebhookReceiver
from tests.conftest import require


@dataclass
class Stack:
    cfg: Config
    dev: DevStack
    receiver: WebhookReceiver
    environ: dict[str, str]

    def ingest(
        self, path: Path | bytes, source: str = "aws_cloudtrail", timeout: float = 120
    ) -> watch.IngestProgress:
        """POST one object and wait until it is committed and its detections ran."""
        start = asyncio.run(watch.stream_position(self.cfg))
        if isinstance(path, bytes):
            import io

            accepted = post_ingest(self.cfg, source, io.BytesIO(path))
        else:
            with open(path, "rb") as f:
                accepted = post_ingest(self.cfg, source, f)
        done = asyncio.run(
            watch.wait_for_ingests(self.cfg, [accepted["ingest_id"]], start, timeout)
        )
        return done[accepted["ingest_id"]]

    def idle(self, timeout: float = 120) -> None:
        names = [t.name for t in load_triggers(self.cfg.broker.eventing_dir)]
        asyncio.run(watch.wait_idle(self.cfg, names, timeout))

    def query(self, sql: str) -> list[dict[str, Any]]:
        from tarn import query

        return query.run(self.cfg, sql).as_dicts()


def _free_base(count: int) -> int:
    for base in range(20000 + (os.getpid() % 200) * 20, 40000, count + 3):
        if all(not _proc.port_open("127.0.0.1", base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require(
        (Path(os.sys.executable).parent / "nats-server").exists(), "nats-server is not installed"
    )
    home = tmp_path_factory.mktemp("stack")
    secret = secrets.token_hex(8)
    receiver = WebhookReceiver(secret=secret)
    url = receiver.start()
    base = _free_base(len(FUNCTIONS) + 2)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TARN_") and k not in ("K_SINK", "K_SERVICE")
    }
    environ.update(
        {
            "TARN_HOME": str(home),
            "TARN_INGEST__TOKEN": "integration-token",
            "TARN_NATS__URL": f"nats://127.0.0.1:{base + len(FUNCTIONS)}",
            "TARN_BROKER__PORT": str(base + len(FUNCTIONS) + 1),
            "TARN_DEV__BASE_PORT": str(base),
            "TARN_DESTINATIONS__HOOK__TYPE": "webhook",
            "TARN_DESTINATIONS__HOOK__URL": url,
            "TARN_DESTINATIONS__HOOK__SECRET": secret,
        }
    )
    cfg = config.load(environ)
    dev = DevStack(cfg, environ=environ)
    try:
        dev.up()
        yield Stack(cfg, dev, receiver, environ)
    finally:
        dev.down()
        receiver.stop()


def services_log(line: str) -> None:
    """Progress of `tarn.services.up()` (a first run builds and downloads), shown even when
    pytest captures output."""
    print(f"[tarn services] {line}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def services_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Endpoints]:
    """The real servers (nats-server, PostgreSQL, MinIO, Trino) of `tarn services`, started once
    per session in a state dir of their own and purged at the end.

    `services_stack.env()` is tarn's TARN_* configuration for them. Off CI a missing tool (Go,
    Maven, Java, PostgreSQL) skips the tests that use it; under CI=true it fails them.
    """
    state = tmp_path_factory.mktemp("services") / "state"
    try:
        ep = services.up(state_dir=state, progress=services_log)
    except MissingPrerequisiteError as exc:
        services.down(state, purge=True)
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"a tool the service stack needs is missing: {exc}")
    except BaseException:
        services.down(state, purge=True)
        raise
    services_log(f"up() timings (s): {ep.timings}")
    try:
        yield ep
    finally:
        services.down(state, purge=True)
