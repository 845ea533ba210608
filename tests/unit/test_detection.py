from pathlib import Path

import pytest

from tarn import detection
from tarn.detection import Detector, Record, load_all, load_detection
from tarn.exceptions import DetectionError


def write(folder: Path, yml: str, py: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "detection.yml").write_text(yml)
    if py is not None:
        (folder / "detect.py").write_text(py)
    return folder


def test_deepget_walks_nested_fields_safely() -> None:
    r = Record({"a": {"b": {"c": 1}, "n": None}, "s": "x"})
    assert r.deepget("a.b.c") == 1
    assert r.deepget("a.b.x", "d") == "d"
    assert r.deepget("s.x", 5) == 5  # through a non-mapping
    assert r.deepget("a.n", "default") == "default"


def test_builtin_detections_load_and_pass_their_inline_tests() -> None:
    dets = load_all(detection.detection_dirs(None))
    assert len(dets) >= 20
    for det in dets:
        assert det.tests, f"{det.id} has no inline tests"
        assert any(t["expect"] for t in det.tests) and any(not t["expect"] for t in det.tests), (
            det.id
        )
        assert all(tag.startswith("attack.") for tag in det.tags)
        for name, ok, detail in detection.run_inline_tests(det):
            assert ok, f"{det.id}: {name}: {detail}"


@pytest.mark.parametrize(
    ("yml", "message"),
    [
        ("id: x\nname: X\nseverity: urgent\ntables: [t]\n", "severity: 'urgent' is not one of"),
        (
            "id: x\nname: X\nseverity: low\ntables: [t]\nthreshold: 0\n",
            "threshold: 0 is less than the minimum",
        ),
        (
            "id: x\nname: X\nseverity: low\ntables: [t]\ncolour: red\n",
            "Additional properties are not allowed",
        ),
        ("id: Bad Id\nname: X\nseverity: low\ntables: [t]\n", "id: 'Bad Id' does not match"),
        ("name: X\nseverity: low\n", "'id' is a required property"),
    ],
)
def test_invalid_detection_yaml_names_file_and_key(tmp_path: Path, yml: str, message: str) -> None:
    folder = write(tmp_path / "d", yml, "def detect(r):\n    return True\n")
    with pytest.raises(DetectionError) as err:
        load_detection(folder)
    assert str(folder / "detection.yml") in str(err.value)
    assert message in str(err.value)


def test_realtime_detection_needs_detect_function(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "d",
        "id: x\nname: X\nseverity: low\ntables: [t]\n",
        "def other(r):\n    return 1\n",
    )
    with pytest.raises(DetectionError, match=r"detect\(record\)"):
        load_detection(folder)


def test_detect_py_that_fails_to_import_is_a_clear_error(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "d", "id: x\nname: X\nseverity: low\ntables: [t]\n", "import nothing_here\n"
    )
    with pytest.raises(DetectionError, match="fails to import: ModuleNotFoundError"):
        load_detection(folder)


def test_user_detection_replaces_builtin_with_the_same_id(tmp_path: Path) -> None:
    write(
        tmp_path / "detections" / "mine",
        "id: aws_root_console_login\nname: Mine\nseverity: low\ntables: [t]\n",
        "def detect(r):\n    return False\n",
    )
    dets = {d.id: d for d in load_all(detection.detection_dirs(str(tmp_path)))}
    assert dets["aws_root_console_login"].name == "Mine"


def test_a_detection_that_raises_is_counted_and_others_still_run(tmp_path: Path) -> None:
    boom = load_detection(
        write(
            tmp_path / "boom",
            "id: boom\nname: Boom\nseverity: low\ntables: [t]\n",
            "def detect(r):\n    raise KeyError('x')\n",
        )
    )
    ok = load_detection(
        write(
            tmp_path / "ok",
            "id: ok\nname: OK\nseverity: high\ntables: [t]\n",
            "def detect(r):\n    return r.deepget('v') > 1\n\ndef title(r):\n    return f\"v={r['v']}\"\n\ndef dedupe(r):\n    return 'k'\n\ndef severity(r):\n    return 'critical'\n",
        )
    )
    result = Detector([boom, ok]).run("t", [{"v": 1}, {"v": 2}, {"v": 3}])
    assert result.errors == {"boom": 3}
    assert [m["title"] for m in result.matches["ok"]] == ["v=2", "v=3"]
    assert {m["dedupe"] for m in result.matches["ok"]} == {"k"}
    assert {m["severity"] for m in result.matches["ok"]} == {"critical"}
    assert [m["position"] for m in result.matches["ok"]] == [1, 2]


def test_detections_only_run_on_their_tables_and_disabled_ones_never(tmp_path: Path) -> None:
    on = load_detection(
        write(
            tmp_path / "on",
            "id: active\nname: Active\nseverity: low\ntables: [a]\n",
            "def detect(r):\n    return True\n",
        )
    )
    off = load_detection(
        write(
            tmp_path / "off",
            "id: inactive\nname: Inactive\nseverity: low\nenabled: false\ntables: [a]\n",
            "def detect(r):\n    return True\n",
        )
    )
    det = Detector([on, off])
    assert set(det.run("a", [{}]).matches) == {"active"}
    assert det.run("b", [{}]).matches == {}


def test_inline_test_failure_is_reported(tmp_path: Path) -> None:
    det = load_detection(
        write(
            tmp_path / "d",
            "id: d\nname: D\nseverity: low\ntables: [t]\ntests:\n  - name: wrong\n    expect: true\n    record: {a: 1}\n",
            "def detect(r):\n    return False\n",
        )
    )
    assert detection.run_inline_tests(det) == [("wrong", False, "expected True, got False")]
