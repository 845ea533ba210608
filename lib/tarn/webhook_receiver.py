"""A small real webhook receiver: checks tarn's HMAC signature and keeps what it received.

`make demo` prints alerts with it; tests use it as the peer that checks every payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    secret: str | None = None
    fail_first: int = 0  # answer HTTP 500 to the first N requests (retry tests)
    on_alert: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, headers: dict[str, str], raw: bytes) -> str | None:
        """Why the request is not a valid tarn webhook, or None if it is."""
        if headers.get("content-type") != "application/json":
            return f"content-type is {headers.get('content-type')!r}"
        if not headers.get("idempotency-key"):
            return "no Idempotency-Key header"
        if self.secret is not None:
            ts = headers.get("x-tarn-timestamp", "")
            want = (
                "sha256="
                + hmac.new(
                    self.secret.encode(), ts.encode() + b"." + raw, hashlib.sha256
                ).hexdigest()
            )
            if not hmac.compare_digest(want, headers.get("x-tarn-signature", "")):
                return "bad or missing X-Tarn-Signature"
            if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
                return "X-Tarn-Timestamp is missing or older than 5 minutes"
        try:
            body = json.loads(raw)
        except ValueError:
            return "body is not JSON"
        alert = body.get("alert") if isinstance(body, dict) else None
        if not isinstance(alert, dict):
            return "body has no alert object"
        for key in ("alert_id", "detection", "severity", "title", "match_count", "first_matched"):
            if key not in alert:
                return f"alert lacks {key}"
        if body.get("action") not in ("created", "updated"):
            return f"action is {body.get('action')!r}"
        return None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver.fail_first
                if failing:
                    self._reply(500, b'{"error":"try again"}')
                    return
                problem = receiver.check(headers, raw)
                if problem:
                    with receiver._lock:
                        receiver.rejected.append(problem)
                    self._reply(400, json.dumps({"error": problem}).encode())
                    return
                item = Received(headers, json.loads(raw))
                with receiver._lock:
                    receiver.received.append(item)
                if receiver.on_alert:
                    receiver.on_alert(item)
                self._reply(200, b'{"ok":true}')

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def alerts(self) -> dict[str, dict[str, Any]]:
        """The newest version of each alert received, by alert id."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for r in self.received:
                a = r.body["alert"]
                if a["alert_id"] not in out or a["version"] >= out[a["alert_id"]]["version"]:
                    out[a["alert_id"]] = a
        return out
