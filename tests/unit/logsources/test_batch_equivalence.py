"""Every built-in source with a batch transform: normalize() through it gives exactly what
transform(record) gives, record by record, on its samples changed at random.

JSON sources: a sample record with values replaced at random paths (by a value another sample
has at that path, by null, "", [], {}, odd text or numbers) or keys removed. Text formats: a
sample line with tokens replaced by tokens of other lines or by odd ones. The goldens hold the
unchanged samples to the same rule (golden.check compares normalize() row for row)."""

from __future__ import annotations

import gzip
import io
import json
import re
from functools import cache
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarn import logsources
from tarn.logsources import golden
from tarn.logsources._parse import parse
from tarn.normalize import normalize


def _batched() -> list[str]:
    """Built-in sources with a batch transform (one that does not load is test_goldens' to
    report, not a reason to test none of the others)."""
    names = []
    for name in logsources.builtin_names():
        try:
            if logsources.builtin(name).columnar is not None:
                names.append(name)
        except logsources.LogSourceError:
            continue
    return names


BATCHED = _batched()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ODD = [
    None, "", " ", [], {}, 0, 1, -1, 1.5, True, False, 2**70, "-", "null", "true", "Yes",
    "é✓", "İ", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "[2001:db8::1]", "not an ip",
    "2026-11-20T01:02:03Z", "2026-11-20T01:02:03", "1795136523", "2026-02-30T00:00:00Z", "x" * 300,
]  # fmt: skip
ODD_TOKENS = ["", "-", "(empty)", "0", "-1", "99999999999999999999", "1.5", "x", "é", "\\x41",
              "::1", "10.0.0.256", "T", "F", "true", "[", "{", '"', "=", "|", "\\"]  # fmt: skip


def _plain(data: bytes) -> bytes:
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data, 1 << 30)
    return data


def _is_json(source: logsources.LogSource) -> bool:
    return source.format in ("json", "ndjson")


@cache
def _material(name: str) -> tuple[list[Any], dict[tuple[str, ...], list[Any]], list[str]]:
    """Records (JSON) or lines (text) of the samples, and the values seen at each path."""
    source = logsources.builtin(name)
    records, lines = [], []
    for sample in golden.samples(source):
        data = _plain(sample.read_bytes())
        if _is_json(source):
            records += [
                r for _, _, r in parse(io.BytesIO(data), source.ingest) if isinstance(r, dict)
            ]
        else:
            lines += data.decode("utf-8", "replace").splitlines()
    seen: dict[tuple[str, ...], list[Any]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                seen.setdefault((*path, k), []).append(v)
                walk(v, (*path, k))

    for r in records:
        walk(r, ())
    return records, seen, lines


def _paths(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*path, k))
            out.extend(_paths(v, (*path, k)))
    return out


@st.composite
def _mutated_json(draw, name: str) -> dict:
    records, seen, _ = _material(name)
    record = json.loads(json.dumps(draw(st.sampled_from(records))))
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(record)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        node = record
        for key in path[:-1]:
            node = node[key]
        how = draw(st.sampled_from(["other", "other", "odd", "drop", "text"]))
        if how == "drop":
            del node[path[-1]]
        elif how == "other" and seen.get(path):
            node[path[-1]] = json.loads(json.dumps(draw(st.sampled_from(seen[path]))))
        elif how == "text":
            node[path[-1]] = draw(st.text(max_size=10))
        else:
            node[path[-1]] = draw(st.sampled_from(ODD))
    return record


_TOKEN = re.compile(r"[^\s,=\[\]\"|:]+")


@st.composite
def _mutated_line(draw, name: str) -> str:
    _, _, lines = _material(name)
    body = [line for line in lines if line and not line.startswith("#")]
    line = draw(st.sampled_from(body))
    for _ in range(draw(st.integers(0, 3))):
        spans = [m.span() for m in _TOKEN.finditer(line)]
        if not spans:
            break
        start, end = draw(st.sampled_from(spans))
        other = draw(st.sampled_from(body))
        tokens = _TOKEN.findall(other) or [""]
        new = draw(st.sampled_from(tokens) | st.sampled_from(ODD_TOKENS))
        line = line[:start] + new + line[end:]
    return line


def _headers(name: str) -> list[str]:
    """Header lines a text sample needs in front of its data lines (csv, zeek)."""
    _, _, lines = _material(name)
    source = logsources.builtin(name)
    if source.format == "zeek":
        return [line for line in lines if line.startswith("#") and not line.startswith("#close")][
            :8
        ]
    if source.format in ("csv", "tsv"):
        return lines[:1]
    return []


def _outcome(source: logsources.LogSource, data: bytes, mode: str) -> tuple[dict, list]:
    tables: dict[str, list] = {}
    side = []
    for chunk in normalize(io.BytesIO(data), source, "eq", 5, columnar=mode):
        for table, rows in chunk.tables.items():
            tables.setdefault(table, []).extend(rows.to_pylist())
        side += [
            (s["position"], s["stage"], s["reason"], s["raw"]) for s in chunk.sideline.to_pylist()
        ]
    return tables, sorted(side)


@pytest.mark.parametrize("name", BATCHED)
@SETTINGS
@given(data=st.data())
def test_batch_transform_equals_transform_on_changed_samples(name: str, data) -> None:
    source = logsources.builtin(name)
    if _is_json(source):
        items = data.draw(st.lists(_mutated_json(name), min_size=1, max_size=10))
        raw = "\n".join(json.dumps(r, ensure_ascii=False) for r in items).encode()
    else:
        items = data.draw(st.lists(_mutated_line(name), min_size=1, max_size=10))
        raw = "\n".join([*_headers(name), *items]).encode() + b"\n"
    assert _outcome(source, raw, "strict") == _outcome(source, raw, "off")


@pytest.mark.parametrize("name", BATCHED)
def test_samples_go_through_the_batch_transform(name: str) -> None:
    """The clean samples are what the batch path is for: nearly all of their records take it
    (a record the batch version leaves on purpose, e.g. one that makes several rows, may not)."""
    source = logsources.builtin(name)
    calls = []

    def counting(record):
        calls.append(record)
        return source.transform(record)

    import dataclasses

    spy = dataclasses.replace(source, transform=counting)
    records = 0
    for sample in golden.samples(source):
        if golden.sidelined_path(source, sample).exists():
            continue
        for chunk in normalize(io.BytesIO(sample.read_bytes()), spy, "eq", columnar="strict"):
            records += chunk.rows
    assert records
    assert len(calls) <= 0.1 * records, (
        f"{len(calls)} of about {records} sample records went through transform(), "
        f"e.g. {calls[0]!r:.300}"
    )
