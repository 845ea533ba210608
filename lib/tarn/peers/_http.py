"""A small threaded HTTP server that hands each POST to a checker and can inject faults."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HttpPeer:
    """Subclasses implement `handle`; `fail_next` queues replies sent before any checking."""

    def __init__(self) -> None:
        self.requests = 0
        self.rejected: list[str] = []
        self._faults: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._host = "127.0.0.1"

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        raise NotImplementedError

    def inject(self, reply: Reply, times: int = 1) -> None:
        """Answer the next `times` requests with `reply`, as an outage of the service would."""
        with self._lock:
            self._faults.extend([reply] * times)

    def reject(self, problem: str) -> None:
        with self._lock:
            self.rejected.append(problem)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the peer first"
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with peer._lock:
                    peer.requests += 1
                    fault = peer._faults.popleft() if peer._faults else None
                reply = fault or peer.handle(self.path, headers, raw)
                self._send(reply)

            def do_GET(self) -> None:
                self._send(Reply(405, {"error": "method not allowed"}))

            def _send(self, reply: Reply) -> None:
                body = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        # A short poll interval: stop() returns at once instead of after up to half a second.
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(0.05), daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        """The URL to configure as the destination's `url`."""
        return self.base_url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def json_body(raw: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body is not JSON: {exc}"
