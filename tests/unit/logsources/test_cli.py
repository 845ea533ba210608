"""`tarn logsources list|test` and `python -m tarn.logsources.golden`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tarn import config, logsources
from tarn.cli import main
from tarn.logsources import golden
from tests.unit.logsources.test_loading import make

YML = "name: my_app\ningest: {format: kv}\nschema: {ecs: [message, source.ip]}\n"
TRANSFORM = "def transform(r):\n    return {'ts': r['t'], 'message': r.get('msg'), 'source': {'ip': r.get('src')}}\n"


@pytest.fixture
def user_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = make(tmp_path / "cfg", "my_app", YML, TRANSFORM)
    (folder / "samples").mkdir()
    (folder / "samples" / "app.log").write_text(
        't=2026-11-20T01:02:03Z msg="hello there" src=10.0.0.1\nnot pairs\n'
    )
    monkeypatch.setenv("TARN_CONFIG_DIR", str(tmp_path / "cfg"))
    config.reset()
    yield folder
    config.reset()


def test_list_shows_builtin_and_user_sources(user_source: Path) -> None:
    result = CliRunner().invoke(main, ["logsources", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["log source"]: r for r in json.loads(result.output)}
    assert rows["aws_cloudtrail"]["origin"] == "built-in"
    assert rows["my_app"] == {
        "log source": "my_app",
        "format": "kv",
        "tables": "my_app",
        "origin": "yours",
        "description": "",
    }


def test_goldens_written_then_checked(user_source: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["logsources", "test", "my_app"])
    assert result.exit_code != 0 and "no golden" in result.output

    assert golden.main(["--write", "my_app"]) == 0
    rows = json.loads((user_source / "golden" / "app.log.json").read_text())
    assert rows == [
        {
            "_table": "my_app",
            "ts": "2026-11-20T01:02:03+00:00",
            "event": {},
            "related": {"ip": ["10.0.0.1"], "user": [], "hosts": [], "hash": []},
            "tarn": {"log_source": "my_app", "table": "my_app"},
            "message": "hello there",
            "source": {"ip": "10.0.0.1"},
        }
    ]
    side = json.loads((user_source / "golden" / "app.log.sidelined.json").read_text())
    assert side == [{"position": 1, "stage": "parse", "reason": "no key=value pairs in the line"}]

    result = runner.invoke(main, ["logsources", "test", "my_app", "aws_cloudtrail"])
    assert result.exit_code == 0, result.output
    assert "passed, 0 failed" in result.output

    (user_source / "samples" / "app.log").write_text(
        "t=2026-11-20T01:02:03Z msg=changed src=10.0.0.1\n"
    )
    result = runner.invoke(main, ["logsources", "test", "my_app"])
    assert result.exit_code != 0 and "FAIL" in result.output
    (check,) = golden.run(logsources.get("my_app", str(user_source.parent.parent)))
    assert check.detail.startswith("row 0: message: golden 'hello there', got 'changed'")


def test_undeclared_fields_fail_the_golden(user_source: Path) -> None:
    (user_source / "transform.py").write_text(
        "def transform(r):\n    return {'ts': r['t'], 'message': 'm', 'vendor': {'thing': 1}}\n"
    )
    logsources.reset()
    (result,) = golden.run(logsources.get("my_app", str(user_source.parent.parent)))
    assert not result.ok and "does not declare" in result.detail and "vendor.thing" in result.detail


def test_unknown_name(user_source: Path) -> None:
    result = CliRunner().invoke(main, ["logsources", "test", "nope"])
    assert result.exit_code != 0 and "unknown log source 'nope'" in result.output
