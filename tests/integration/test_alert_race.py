"""Two alert_manager replicas racing on one alert: no match lost, no second alert created."""

from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from cloudevents.conversion import to_binary

from tarn import _proc, alerting, config, events
from tarn.bus import SyncBus
from tests.conftest import ROOT, EventSink, event_data

pytestmark = pytest.mark.integration


def test_two_replicas_count_every_match_once_and_create_one_alert(
    nats_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    sink = EventSink()
    env = {
        "PATH": "/usr/bin:/bin",
        "TARN_HOME": str(tmp_path / "home"),
        "TARN_NATS__URL": nats_url,
        "TARN_ALERTING__KV_BUCKET": f"race_{tag}",
        "K_SINK": sink.url,
        "THREADS": "8",
    }
    replicas = []
    try:
        for i in range(2):
            port = _proc.free_port()
            proc = _proc.Managed(f"alert-manager-{i}", tmp_path / "run", tmp_path / "logs")
            argv = [str(Path(sys.executable).parent / "functions-framework"), "--target", "handle",
                    "--source", str(ROOT / "functions" / "alert_manager" / "main.py"), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            _proc.start(proc, argv, env=env, cwd=ROOT, timeout=60,
                        ready=lambda p=port: _proc.port_open("127.0.0.1", p))  # fmt: skip
            replicas.append((proc, f"http://127.0.0.1:{port}/"))

        n_events, per_event = 40, 3
        errors: list[str] = []

        def send(i: int) -> None:
            matches = [
                {
                    "ts": f"2026-11-20T01:{i:02d}:{j:02d}+00:00",
                    "title": "Brute force",
                    "dedupe": "carol",
                    "severity": "medium",
                    "context": {},
                    "event_id": f"e{i}-{j}",
                }
                for j in range(per_event)
            ]
            body = {
                "detection": "race",
                "name": "Race",
                "threshold": 5,
                "window_minutes": 120,
                "tags": [],
                "matches": matches,
            }
            ev = events.make_event(events.RULE_MATCHED, "detector", body, id_=f"race-{tag}-{i}")
            headers, data = to_binary(ev)
            url = replicas[i % 2][1]
            for _ in range(3):  # each event delivered to both replicas... and again (at least once)
                r = httpx.post(replicas[(i + _) % 2][1], headers=headers, content=data, timeout=60)
                if r.status_code != 200:
                    errors.append(f"{url}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n_events)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

        cfg = config.load(env)
        bus = SyncBus(cfg)
        try:
            state = bus.kv_get_json(f"race_{tag}", alerting.alert_key("race", "carol"))
        finally:
            bus.close()
        assert state is not None
        assert state["current"]["match_count"] == n_events * per_event
        alerts = sink.of_type(events.ALERT)
        created = {
            event_data(e)["alert_id"] for e in alerts if event_data(e)["action"] == "created"
        }
        assert len(created) == 1
        assert {event_data(e)["alert_id"] for e in alerts} == created
        # Every version was announced with one id; the highest carries every match.
        final = max((event_data(e) for e in alerts), key=lambda d: d["version"])
        assert final["match_count"] == n_events * per_event
    finally:
        for proc, _ in replicas:
            _proc.stop(proc)
        sink.close()
