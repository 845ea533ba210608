from pathlib import Path

import pytest

from tarn.storage import LocalStore


def test_local_store_round_trip_and_listing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("raw", "a/b/one.json", b"1")
    src = tmp_path / "src.bin"
    src.write_bytes(b"22")
    store.put_file("raw", "a/two.json", src)
    assert store.get_bytes("raw", "a/b/one.json") == b"1"
    with store.open("raw", "a/two.json") as f:
        assert f.read() == b"22"
    assert list(store.list("raw", "a/")) == ["a/b/one.json", "a/two.json"]
    assert store.exists("raw", "a/two.json")
    store.delete("raw", "a/two.json")
    assert not store.exists("raw", "a/two.json")
    assert list(store.list("missing-bucket")) == []


def test_local_store_rejects_keys_that_escape_the_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        LocalStore(tmp_path).put_bytes("raw", "../../etc/x", b"")


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(3):
        store.put_bytes("b", "k", str(i).encode())
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["k"]
    assert store.get_bytes("b", "k") == b"2"
