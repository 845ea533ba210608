"""The local broker as a real process over real nats-server, against real HTTP subscribers."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cloudevents.conversion import to_binary, to_structured

from tarn import _proc, config, events
from tarn.broker import load_triggers
from tarn.broker._server import Broker
from tarn.devstack import FUNCTIONS, DevStack, service_name
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


class Subscriber:
    """Answers with the given status codes in turn (the last one repeats) and records arrivals."""

    def __init__(self, statuses: list[int], reply: dict | None = None) -> None:
        self.statuses = statuses
        self.calls: list[tuple[float, dict[str, str]]] = []
        self.reply = reply
        sub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sub.calls.append(
                    (time.monotonic(), {k.lower(): v for k, v in self.headers.items()})
                )
                status = sub.statuses[min(len(sub.calls) - 1, len(sub.statuses) - 1)]
                headers = {}
                body = b""
                if sub.reply and status < 300:
                    headers, body = to_binary(
                        events.make_event(sub.reply["type"], "test", {}, id_=sub.reply["id"])
                    )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types(self) -> list[str]:
        return [h["ce-type"] for _, h in self.calls]


TRIGGERS = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: flaky}
spec:
  broker: tarn
  filter: {attributes: {type: test.flaky.v1}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: flaky}}
  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: PT0.1S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dead}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: replier}
spec:
  broker: tarn
  filter: {attributes: {type: test.ask.v1, source: /tarn/test}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: replier}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: answers}
spec:
  broker: tarn
  filters: [{prefix: {type: test.answer.}}]
  subscriber: {uri: "%(answers)s"}
"""


@pytest.fixture
def broker(nats_url: str, tmp_path: Path) -> Iterator[dict]:
    tag = uuid.uuid4().hex[:8]
    subs = {
        "flaky": Subscriber([500, 503, 500, 500]),
        "dead": Subscriber([200]),
        "replier": Subscriber([200], {"type": "test.answer.v1", "id": f"ans-{tag}"}),
        "answers": Subscriber([200]),
    }
    eventing = tmp_path / "eventing"
    eventing.mkdir()
    (eventing / "t.yaml").write_text(TRIGGERS % {"answers": subs["answers"].url})
    services = tmp_path / "services.json"
    services.write_text(json.dumps({name: s.url for name, s in subs.items()}))
    port = _proc.free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "TARN_HOME": str(tmp_path / "home"),
        "TARN_NATS__URL": nats_url,
        "TARN_NATS__STREAM": f"B_{tag}",
        "TARN_NATS__SUBJECT_PREFIX": f"b{tag}.events",
        "TARN_NATS__DEAD_LETTER_STREAM": f"BD_{tag}",
        "TARN_NATS__DEAD_LETTER_SUBJECT": f"b{tag}.dead",
        "TARN_BROKER__PORT": str(port),
        "TARN_BROKER__EVENTING_DIR": str(eventing),
    }
    proc = _proc.Managed("broker", tmp_path / "run", tmp_path / "logs")

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    _proc.start(
        proc,
        [sys.executable, "-m", "tarn.broker", "--services", str(services)],
        env=env,
        ready=healthy,
        timeout=30,
        cwd=ROOT,
    )
    yield {"url": f"http://127.0.0.1:{port}/", "subs": subs, "log": proc.log_file}
    _proc.stop(proc)
    for s in subs.values():
        s.server.shutdown()
        s.server.server_close()


def wait_for(cond, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_retries_with_exponential_backoff_then_dead_letters_with_knative_attributes(broker) -> None:
    event = events.make_event("test.flaky.v1", "test", {"x": 1}, id_="flaky-1")
    headers, body = to_binary(event)
    assert httpx.post(broker["url"], headers=headers, content=body).status_code == 202
    dead = broker["subs"]["dead"]
    wait_for(lambda: len(dead.calls) == 1)
    flaky = broker["subs"]["flaky"]
    assert len(flaky.calls) == 4  # the first attempt and 3 retries
    gaps = [b[0] - a[0] for a, b in zip(flaky.calls, flaky.calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8  # 0.1s * 2^n
    _, h = dead.calls[0]
    assert h["ce-id"] == "flaky-1"
    assert h["ce-knativeerrorcode"] == "500"
    assert h["ce-knativeerrordest"] == flaky.url
    assert h["ce-tarntrigger"] == "flaky"


def test_same_event_id_is_delivered_once_and_filters_route(broker) -> None:
    ask = events.make_event("test.ask.v1", "test", {}, id_="ask-1")
    for mode in (to_binary, to_structured):
        headers, body = mode(ask)
        assert (
            httpx.post(broker["url"] + "tarn/default", headers=headers, content=body).status_code
            == 202
        )
    other_source = events.make_event("test.ask.v1", "elsewhere", {}, id_="ask-2")
    headers, body = to_binary(other_source)
    httpx.post(broker["url"], headers=headers, content=body)
    replier, answers = broker["subs"]["replier"], broker["subs"]["answers"]
    wait_for(lambda: len(answers.calls) == 1)  # the reply event was published and routed
    time.sleep(0.5)
    assert replier.types() == ["test.ask.v1"]  # once, despite two posts; not the other source
    assert answers.types() == ["test.answer.v1"]
    assert broker["subs"]["flaky"].calls == []


def test_ingress_rejects_what_is_not_a_cloudevent(broker) -> None:
    resp = httpx.post(broker["url"], content=b"hello", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 400 and "not a CloudEvent" in resp.json()["error"]


def test_local_broker_routes_exactly_as_the_manifests_say() -> None:
    """The dev stack's broker sends each Trigger to the function its manifest names."""
    import yaml

    cfg = config.load({})
    dev = DevStack(cfg)
    services = {service_name(f): dev.function_url(f) for f in FUNCTIONS}
    routes = Broker(cfg, load_triggers(), services).routes
    expected = {}
    for path in sorted((ROOT / "eventing").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Trigger":
                spec = doc["spec"]
                dls = spec["delivery"]["deadLetterSink"]["ref"]["name"]
                expected[doc["metadata"]["name"]] = (
                    services[spec["subscriber"]["ref"]["name"]],
                    services[dls],
                )
    assert routes == expected
    knative_services = set()
    for path in (ROOT / "knative").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "Service"
                and doc.get("apiVersion", "").startswith("serving.knative.dev")
            ):
                knative_services.add(doc["metadata"]["name"])
    assert set(services) <= knative_services
