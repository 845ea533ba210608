"""Build each function with functions-framework and post real CloudEvents to it in-process."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import flask.testing
import functions_framework
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from tarn import runtime
from tests.conftest import ROOT

MODES = ("binary", "structured")


@pytest.fixture
def make_app() -> Callable[..., flask.testing.FlaskClient]:
    def make(name: str, testing: bool = True) -> flask.testing.FlaskClient:
        """testing=False answers errors with HTTP 500 as the served function does."""
        app = functions_framework.create_app("handle", str(ROOT / "functions" / name / "main.py"))
        app.testing = testing
        return app.test_client()

    return make


def post_event(client: flask.testing.FlaskClient, event: CloudEvent, mode: str) -> Any:
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    return client.post("/", headers=headers, data=body)


@pytest.fixture
def isolated_nats(nats_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's nats-server, with streams and buckets of this test's own."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("TARN_NATS__URL", nats_url)
    monkeypatch.setenv("TARN_NATS__STREAM", f"EVENTS_{tag}")
    monkeypatch.setenv("TARN_NATS__SUBJECT_PREFIX", f"t{tag}.events")
    monkeypatch.setenv("TARN_NATS__DEAD_LETTER_STREAM", f"DLQ_{tag}")
    monkeypatch.setenv("TARN_NATS__DEAD_LETTER_SUBJECT", f"t{tag}.deadletter")
    monkeypatch.setenv("TARN_ALERTING__KV_BUCKET", f"alerts_{tag}")
    monkeypatch.setenv("TARN_ALERTING__DELIVERIES_BUCKET", f"deliveries_{tag}")
    runtime.reset_context()  # drop any configuration read before these variables were set
    return tag
