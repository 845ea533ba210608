"""Every ingest format: the exact record shapes handed to transforms, table-driven."""

from __future__ import annotations

import gzip
import io
import json

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tarn.logsources import _json, _parse
from tarn.logsources._parse import Ingest, ParseError, parse


def items(data: bytes, fmt: str, **kw) -> list[tuple[int, str, object]]:
    return list(parse(io.BytesIO(data), Ingest(format=fmt, **kw)))


def records(data: bytes, fmt: str, **kw) -> list[object]:
    return [r for _, _, r in items(data, fmt, **kw)]


def reasons(data: bytes, fmt: str, **kw) -> list[str]:
    return [str(r) for _, _, r in items(data, fmt, **kw) if isinstance(r, ParseError)]


# -- json / ndjson ----------------------------------------------------------------------------
JSON_CASES = [
    ("one-line document", b'{"Records": [{"a": 1}, {"b": 2}]}', [{"a": 1}, {"b": 2}]),
    (
        "pretty document",
        b'{\n  "Records": [\n    {"a": 1},\n    {"b": [1, 2]}\n  ]\n}\n',
        [{"a": 1}, {"b": [1, 2]}],
    ),
    ("keys around the records", b'{"x": 1, "Records": [{"a": 1}], "y": {"z": []}}', [{"a": 1}]),
    ("ndjson of records", b'{"a": 1}\n\n{"a": 2}\n', [{"a": 1}, {"a": 2}]),
    (
        "ndjson of documents",
        b'{"Records": [{"a": 1}]}\n{"Records": [{"a": 2}, {"a": 3}]}\n',
        [{"a": 1}, {"a": 2}, {"a": 3}],
    ),
    (
        "concatenated documents",
        b'{"Records": [{"a": 1}]}{"Records": [{"a": 2}]}',
        [{"a": 1}, {"a": 2}],
    ),
    ("top-level array", b'[\n{"a": 1},\n{"a": 2}\n]', [{"a": 1}, {"a": 2}]),
    ("a single record", b'{\n "a": 1,\n "b": "x"\n}', [{"a": 1, "b": "x"}]),
    ("empty records", b'{"Records": []}', []),
    (
        "numbers and literals",
        b'{"Records": [1, -2.5e3, true, null, "s"]}',
        [1, -2500.0, True, None, "s"],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_json_records(data: bytes, expected: list) -> None:
    assert records(data, "json", records_path="Records") == expected


def test_json_raw_text_is_the_exact_slice_of_the_input() -> None:
    data = b'{"Records": [ {"a":  1 , "u": "\\u00e9"},\n{"b": 2} ]}'
    assert [raw for _, raw, _ in items(data, "json", records_path="Records")] == [
        '{"a":  1 , "u": "\\u00e9"}',
        '{"b": 2}',
    ]


def test_json_nested_records_path() -> None:
    data = b'{"meta": {"n": 2}, "data": {"items": [{"a": 1}, {"a": 2}]}}\n'
    assert records(data, "json", records_path="data.items") == [{"a": 1}, {"a": 2}]


def test_json_records_path_that_is_not_a_list() -> None:
    (reason,) = reasons(b'{"Records": {"a": 1}}', "json", records_path="Records")
    assert "holds dict, not a list" in reason


def test_json_broken_record_in_a_document_keeps_the_records_before() -> None:
    data = b'[\n{"a": 1},\n{"a": 2},\n{"a" 3},\n{"a": 4}\n]'
    out = items(data, "json")
    assert [r for _, _, r in out[:2]] == [{"a": 1}, {"a": 2}]
    position, raw, err = out[2]
    assert isinstance(err, ParseError) and "Expecting ':' delimiter" in str(err)
    assert position == 2 and raw.startswith('{"a" 3}')
    assert len(out) == 3


def test_json_bad_ndjson_line_is_alone() -> None:
    data = b'{"a": 1,\n{"a": 2}\n[1]\n{"a": 3}\n'
    out = items(data, "json", records_path="Records")
    assert [r for _, _, r in out if not isinstance(r, ParseError)] == [{"a": 2}, [1], {"a": 3}]
    assert out[0][0] == 0 and "invalid JSON" in str(out[0][2])


def test_ndjson_values_and_errors() -> None:
    out = items(b'{"a": 1}\n"text"\n{bad\n', "ndjson")
    assert out[0] == (0, '{"a": 1}', {"a": 1})
    assert out[1][2] == "text"
    assert out[2][0] == 2 and "invalid JSON" in str(out[2][2])


def test_json_document_streams_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 4 KiB reads, a 2 MB document is never held whole: the window stays small."""
    monkeypatch.setattr(_json, "READ_SIZE", 4096)
    monkeypatch.setattr(_parse, "READ_SIZE", 4096)
    monkeypatch.setattr(_json, "_SNIFF", 4096)
    record = {"eventName": "GetObject", "pad": "x" * 500}
    data = json.dumps({"Records": [record] * 4000}).encode()
    widest = 0
    original_more = _json._Text.more

    def spy(self: _json._Text, at_least: int = 4096) -> bool:
        nonlocal widest
        widest = max(widest, len(self.buf))
        return original_more(self, at_least)

    monkeypatch.setattr(_json._Text, "more", spy)
    out = records(data, "json", records_path="Records")
    assert len(out) == 4000 and out[-1] == record
    assert widest < 64 * 1024, widest


def test_json_record_split_across_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_json, "READ_SIZE", 7)
    monkeypatch.setattr(_json, "_SNIFF", 7)
    data = '{"Records": [{"a": 12345, "é": "ünïcode"}, 67890, {"b": [true, false]}]}'.encode()
    assert records(data, "json", records_path="Records") == [
        {"a": 12345, "é": "ünïcode"},
        67890,
        {"b": [True, False]},
    ]


# -- csv / tsv --------------------------------------------------------------------------------
def test_csv_records() -> None:
    data = b'\xef\xbb\xbfa, b ,c\n1,"x, ""y""",\n\n2,"two\nlines",z\n3,4\n'
    out = items(data, "csv")
    assert out[0] == (1, '1,"x, ""y""",', {"a": "1", "b": 'x, "y"', "c": None})
    assert out[1] == (3, '2,"two\nlines",z', {"a": "2", "b": "two\nlines", "c": "z"})
    assert out[2][0] == 5 and str(out[2][2]) == "2 fields where the header has 3"


def test_csv_delimiter() -> None:
    assert records(b"a;b\n1;2\n", "csv", delimiter=";") == [{"a": "1", "b": "2"}]


def test_tsv_has_no_quoting() -> None:
    assert records(b'a\tb\n"1\t2"\n', "tsv") == [{"a": '"1', "b": '2"'}]


# -- zeek -------------------------------------------------------------------------------------
ZEEK_TSV = (
    b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    b"#open\t2026-11-20-00-00-00\n#fields\tts\tuid\tid.orig_h\tservice\ttags\tnote\n"
    b"#types\ttime\tstring\taddr\tstring\tset[string]\tvector[count]\n"
    b"1795136523.123456\tCabc\t10.0.0.1\t-\ta,b\\x2cc\t(empty)\n"
    b"1795136524.0\tCdef\t10.0.0.2\t(empty)\t(empty)\t1,2\n"
    b"#close\t2026-11-20-01-00-00\n"
)


def test_zeek_tsv() -> None:
    out = items(ZEEK_TSV, "zeek")
    assert out[0][0] == 8
    assert out[0][2] == {
        "ts": "1795136523.123456",
        "uid": "Cabc",
        "id.orig_h": "10.0.0.1",
        "service": None,
        "tags": ["a", "b,c"],
        "note": [],
        "_path": "conn",
    }
    assert out[1][2]["service"] == "" and out[1][2]["note"] == ["1", "2"]


def test_zeek_tsv_errors() -> None:
    assert reasons(b"1\t2\n", "zeek") == ["data line before the #fields header"]
    assert reasons(b"#fields\ta\tb\n1\n", "zeek") == ["1 fields where #fields has 2"]


# what Zeek writes in a value, and what a hand-made log might: markers, separators, escapes
_zeek_piece = st.sampled_from(
    ["-", "(empty)", ",", ";", "\\x2c", "\\x", "\\x09", "a", "é", "1.5", ""]
)
_zeek_value = st.lists(_zeek_piece, max_size=4).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(st.sampled_from(["ts", "uid", "a", "b", "_path"]), min_size=1, max_size=5),
    types=st.lists(
        st.sampled_from(["string", "set[string]", "vector[count]", "count"]), max_size=6
    ),
    set_separator=st.sampled_from([",", ";", "\\x2c"]),
    empty=st.sampled_from(["(empty)", "-", "", "none"]),
    unset=st.sampled_from(["-", "(empty)", "", "null"]),
    cells=st.lists(st.lists(_zeek_value, min_size=5, max_size=5), max_size=8),
)
def test_zeek_tsv_read_by_column_as_by_line(
    names, types, set_separator, empty, unset, cells
) -> None:
    """Lazy Zeek rows give the parser's records, and their layout's columns the same values
    key by key (repeated names, odd markers and separators, escapes included)."""
    head = (
        f"#set_separator\t{set_separator}\n#empty_field\t{empty}\n#unset_field\t{unset}\n"
        f"#path\tp\n#fields\t" + "\t".join(names) + "\n#types\t" + "\t".join(types) + "\n"
    )
    body = "".join("\t".join(row[: len(names)]) + "\n" for row in cells)
    data = (head + body).encode()
    eager = items(data, "zeek")
    lazy = list(parse(io.BytesIO(data), Ingest(format="zeek"), lazy=True))
    assert [(n, raw) for n, raw, _ in lazy] == [(n, raw) for n, raw, _ in eager]
    rows = []
    for (_, _, want), (_, _, got) in zip(eager, lazy, strict=True):
        if isinstance(want, ParseError):
            assert str(got) == str(want)
            continue
        assert type(got) is _parse.ZeekRow and got.record() == want
        assert list(got.record()) == list(want)  # the keys in the same order
        rows.append((got, want))
    if rows:
        columns = rows[0][0].layout.columns([got.values for got, _ in rows])
        assert list(columns) == list(rows[0][1])
        for key, values in columns.items():
            assert values == [want[key] for _, want in rows]


def test_zeek_layout_follows_the_directives() -> None:
    data = b"#fields\ta\n1\n#unset_field\tX\nX\n#fields\tb\tc\n1\t2\n"
    out = list(parse(io.BytesIO(data), Ingest(format="zeek", table="t"), lazy=True))
    first, second, third = (r for _, _, r in out)
    assert first.layout is not second.layout and second.layout is not third.layout
    assert first.record() == {"a": "1", "_path": "t"}
    assert second.record() == {"a": None, "_path": "t"}
    assert third.layout.columns([third.values]) == {"b": ["1"], "c": ["2"], "_path": ["t"]}


def test_zeek_json() -> None:
    data = b' {"ts": 1.5, "uid": "C1"}\n{"_path": "dns", "ts": 2}\n[1]\n'
    out = items(data, "zeek", table="conn")
    assert out[0][2] == {"ts": 1.5, "uid": "C1", "_path": "conn"}
    assert out[1][2] == {"_path": "dns", "ts": 2}
    assert "must be an object" in str(out[2][2])


# -- syslog -----------------------------------------------------------------------------------
SYSLOG_CASES = [
    (
        "rfc5424",
        '<34>1 2026-11-20T01:02:03.123Z mymachine su 77 ID47 [ex@1 a="1" b="q\\"x\\]"][y@2 c="d"] \ufeff\'su root\' failed',
        {"facility": 4, "severity": 2, "timestamp": "2026-11-20T01:02:03.123Z", "hostname": "mymachine",
         "appname": "su", "procid": "77", "msgid": "ID47",
         "structured_data": {"ex@1": {"a": "1", "b": 'q"x]'}, "y@2": {"c": "d"}},
         "message": "'su root' failed", "format": "rfc5424"},
    ),
    (
        "rfc5424 nil values",
        "<165>1 2026-11-20T01:02:03+01:00 - - - - -",
        {"facility": 20, "severity": 5, "timestamp": "2026-11-20T01:02:03+01:00", "hostname": None,
         "appname": None, "procid": None, "msgid": None, "structured_data": None, "message": "", "format": "rfc5424"},
    ),
    (
        "rfc3164",
        "<38>Nov 20 01:02:03 bastion sshd[4242]: Accepted publickey for alice",
        {"facility": 4, "severity": 6, "timestamp": "Nov 20 01:02:03", "hostname": "bastion",
         "appname": "sshd", "procid": "4242", "msgid": None, "structured_data": None,
         "message": "Accepted publickey for alice", "format": "rfc3164"},
    ),
    (
        "rfc3164 without PRI or host",
        "Nov  5 01:02:03 sudo: alice : TTY=pts/0",
        {"facility": None, "severity": None, "timestamp": "Nov  5 01:02:03", "hostname": None,
         "appname": "sudo", "procid": None, "msgid": None, "structured_data": None,
         "message": "alice : TTY=pts/0", "format": "rfc3164"},
    ),
    (
        "rsyslog high-precision time",
        "2026-11-20T01:02:03.123456+00:00 web01 CRON[99]: (root) CMD (true)",
        {"facility": None, "severity": None, "timestamp": "2026-11-20T01:02:03.123456+00:00", "hostname": "web01",
         "appname": "CRON", "procid": "99", "msgid": None, "structured_data": None,
         "message": "(root) CMD (true)", "format": "rfc3164"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in SYSLOG_CASES], ids=[c[0] for c in SYSLOG_CASES]
)
def test_syslog(line: str, expected: dict) -> None:
    assert records(line.encode() + b"\n", "syslog") == [expected]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "not a syslog line"),
        ("<200>Nov 20 01:02:03 h a: b", "above 191"),
        ("<34>1 - host app - - -", "NILVALUE"),
        ('<34>1 2026-11-20T01:02:03Z h a - - [id a="1"', "expected ']'"),
        ('<34>1 2026-11-20T01:02:03Z h a - - [id a="1]', "unterminated value"),
    ],
)
def test_syslog_errors(line: str, reason: str) -> None:
    (got,) = reasons(line.encode(), "syslog")
    assert reason in got


# -- kv and cef -------------------------------------------------------------------------------
def test_kv() -> None:
    line = b'<189>date=2026-11-20 time=01:02:03 devname="FW \\"edge\\" 1" srcip=10.0.0.1 msg="a=b c" empty= path="C:\\\\x"\n'
    assert records(line, "kv") == [
        {"date": "2026-11-20", "time": "01:02:03", "devname": 'FW "edge" 1', "srcip": "10.0.0.1",
         "msg": "a=b c", "empty": "", "path": "C:\\x"}
    ]  # fmt: skip
    assert reasons(b"no pairs here\n", "kv") == ["no key=value pairs in the line"]
    assert "unterminated" in reasons(b'a="open\n', "kv")[0]


def test_cef() -> None:
    line = b"<134>Nov 20 01:02:03 fw CEF:0|Acme\\|Corp|Edge FW|2.1|4000|Port scan detected|7|src=10.0.0.1 msg=many ports a\\=b\\\\c dst=10.0.0.2 cs1=one\\ntwo"
    assert records(line, "cef") == [
        {"cef_version": "0", "device_vendor": "Acme|Corp", "device_product": "Edge FW",
         "device_version": "2.1", "signature_id": "4000", "name": "Port scan detected", "severity": "7",
         "extensions": {"src": "10.0.0.1", "msg": "many ports a=b\\c", "dst": "10.0.0.2", "cs1": "one\ntwo"}}
    ]  # fmt: skip
    assert records(b"CEF:1|V|P|1|2|N|High", "cef")[0]["severity"] == "High"


@pytest.mark.parametrize(
    ("line", "reason"),
    [("nothing", "no 'CEF:' header"), ("CEF:0|a|b", "needs 7"), ("CEF:x|a|b|c|d|e|f|", "version must be a number"),
     ("CEF:0|a|b|c|d|e|f|junk", "key=value pairs")],
)  # fmt: skip
def test_cef_errors(line: str, reason: str) -> None:
    (got,) = reasons(line.encode(), "cef")
    assert reason in got


# -- compression, long lines ------------------------------------------------------------------
@pytest.mark.parametrize(
    "compress",
    [
        lambda b: b,
        gzip.compress,
        lambda b: zstandard.ZstdCompressor().compress(b),
        lambda b: gzip.compress(b[:10]) + gzip.compress(b[10:]),  # concatenated members
        lambda b: (
            zstandard.ZstdCompressor().compress(b[:10])
            + zstandard.ZstdCompressor().compress(b[10:])
        ),
    ],
    ids=["none", "gzip", "zstd", "gzip-members", "zstd-frames"],
)
@pytest.mark.parametrize("fmt", ["ndjson", "json", "kv"])
def test_compression_is_told_from_content(compress, fmt: str) -> None:
    data = b'{"a": "x=1"}\n{"a": "y=2"}\n' if fmt != "kv" else b"a=1 b=2\na=3\n"
    assert len(records(compress(data), fmt)) == 2


def test_too_long_line_is_sidelined_without_reading_it_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_parse, "MAX_LINE", 1000)
    monkeypatch.setattr(_parse, "MAX_RAW", 100)
    data = b'{"a": 1}\n{"b": "' + b"x" * 5000 + b'"}\n{"c": 3}\n'
    out = items(data, "ndjson")
    assert out[0][2] == {"a": 1} and out[2] == (2, '{"c": 3}', {"c": 3})
    assert "longer than the limit" in str(out[1][2]) and len(out[1][1]) == 100


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ParseError, match="known: json, ndjson, csv"):
        parse(io.BytesIO(b""), Ingest(format="xml"))


@pytest.mark.parametrize(
    ("fmt", "data", "expected"),
    [
        ("json", b'\xef\xbb\xbf{\n "Records": [{"a": 1}]\n}', [{"a": 1}]),
        ("ndjson", b'\xef\xbb\xbf{"a": 1}\n', [{"a": 1}]),
        ("zeek", b'\xef\xbb\xbf{"a": 1}\n', [{"a": 1, "_path": None}]),
        ("kv", b"\xef\xbb\xbfa=1\n", [{"a": "1"}]),
    ],
)
def test_a_utf8_byte_order_mark_is_skipped(fmt: str, data: bytes, expected: list) -> None:
    assert records(data, fmt, **({"records_path": "Records"} if fmt == "json" else {})) == expected


# -- a small document split in one pass = the incremental reader ---------------------------------
_doc_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


@st.composite
def _documents(draw) -> str:
    path = draw(st.sampled_from(["Records", "a.Records"]))
    body = {"Records": draw(st.lists(_doc_values, max_size=5) | _doc_values)}
    if path == "a.Records":
        body = {"a": body}
    body = {
        **draw(st.dictionaries(st.sampled_from(["x", "y", "Records"]), _doc_values, max_size=2)),
        **body,
    }
    text = json.dumps(
        body, indent=draw(st.sampled_from([None, 1, 4])), ensure_ascii=draw(st.booleans())
    )
    mutation = draw(st.sampled_from(["none", "none", "repeat", "cut", "tail", "pad"]))
    if mutation == "repeat":  # a second records key: the reader keeps the first
        text = text[:-1] + ', "Records": [{"other": 1}]}'
    elif mutation == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "tail":
        text += draw(st.sampled_from([" x", "{}", '\n{"Records": []}']))
    elif mutation == "pad":
        text = "\n  " + text + "\n\n"
    return path + "\n" + text


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_whole_document_split_equals_the_incremental_reader(case: str) -> None:
    path, text = case.split("\n", 1)
    reader = list(_json._Walker(_json._Text(None, text), path, 0).documents())
    whole = _json._whole_document(text, path)
    if whole is not None:
        assert [(p, raw) for p, raw, _ in reader] == list(enumerate(whole))
        assert [r for _, _, r in reader] == [_json.decode_line(raw) for raw in whole]
    # and parse() (which takes the one-pass split where it can) gives what the reader gives
    got = items(text.encode(), "json", records_path=path)
    want = list(_json._Walker(_json._Text(None, text.removeprefix("\ufeff")), path, 0).documents())
    if _json._looks_like_document(text, True):
        assert [(p, raw, str(r) if isinstance(r, ParseError) else r) for p, raw, r in got] == [
            (p, raw, str(r) if isinstance(r, ParseError) else r) for p, raw, r in want
        ]


def test_whole_document_split_takes_only_the_plain_case() -> None:
    doc = '{"v": 1, "Records": [{"a": "x"}, [1], 2.5]}'
    assert _json._whole_document(doc, "Records") == ['{"a": "x"}', "[1]", "2.5"]
    assert _json._whole_document('{"a": {"Records": [ {"b": 1} ]}}', "a.Records") == ['{"b": 1}']
    for other in (
        '{"Records": [1], "Records": [2]}',  # repeated: the reader takes the first
        '{"Rec\\u006frds": [1]}',  # an escaped key
        '{"Records": {"a": 1}}',  # not a list
        '{"Records": [1]} {"Records": [2]}',  # two documents
        '{"Records": [NaN]}',  # only the standard library reads NaN
    ):
        assert _json._whole_document(other, "Records") is None, other


# -- syslog lines read by column (the batch path) = decode_line ----------------------------------
_pieces = {
    "pri": st.sampled_from(["<13>", "<191>", "<192>", "<0>", "<999>", "<86>", "", "", "<1a>"]),
    "ts": st.sampled_from(
        ["Nov 20 04:31:02", "Nov  2 04:31:02", "Nov 20 2026 04:31:02", "Nov 20 04:31:02.123",
         "Nov 20 04:31:02Z", "nov 20 04:31:02", "2026-11-20T04:31:02Z", "Nov 20 4:31:02", "Xyz 20 04:31:02"]
    ),
    "host": st.sampled_from(["web1", "Z", "UTC", "GMT", "+0100", "-05:00", "+01", "a:b", "a[1]",
                             "ünï", "10.0.0.1", "-", ""]),
    "tag": st.sampled_from(["sshd[812]", "sshd", "sudo", "sshd[]", "x" * 129, "a:b", "cron[1 2]",
                            "CRON[12]", "", "y" * 128, f"p[{'1' * 64}]", f"p[{'1' * 65}]",
                            "a[1]b", "a]", "a[1][2]"]),
    "sep": st.sampled_from([": ", ":", " ", ":x", ":  "]),
    "msg": st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30),
}  # fmt: skip


@st.composite
def _syslog_lines(draw) -> str:
    if draw(st.booleans()):
        p = {k: draw(v) for k, v in _pieces.items()}
        return f"{p['pri']}{p['ts']} {p['host']} {p['tag']}{p['sep']}{p['msg']}"
    fields = [
        draw(st.sampled_from(["2026-11-20T04:31:02Z", "-", "x", "a-b", "--", "-x", "é"]))
        for _ in range(5)
    ]
    sd = draw(st.sampled_from(["-", '[a b="c"]', "-x", "", "- -", "[x]"]))
    sep = draw(st.sampled_from([" ", "  ", ""]))
    pri, version = draw(_pieces["pri"]), draw(st.sampled_from(["1", "10", "123", ""]))
    return f"{pri}{version} {' '.join(fields)} {sd}{sep}{draw(_pieces['msg'])}"


@settings(max_examples=500, deadline=None)
@given(st.lists(_syslog_lines(), min_size=1, max_size=8))
def test_syslog_lines_read_by_column_as_decode_line_reads_them(lines_: list[str]) -> None:
    from tarn.logsources import _syslog

    columns, fast = _syslog.read_columns(lines_)
    for i, line in enumerate(lines_):
        if not fast[i].as_py():
            continue
        want = _syslog.decode_line(line)  # a fast line never raises
        got = {name: values[i].as_py() for name, values in columns.items()}
        assert got == {k: v for k, v in want.items() if k != "structured_data"}, line
        assert want["structured_data"] is None


def test_common_syslog_lines_are_read_by_column() -> None:
    from tarn.logsources import _syslog

    lines_ = [
        "<86>Nov 20 04:31:02 web1 sshd[812]: Accepted publickey for alice",
        "<38>Nov  2 04:31:02 web1 sudo: alice : TTY=pts/0 ; COMMAND=/bin/ls",
        "<34>1 2026-11-20T04:31:02Z host app 1 ID47 - message",
        "<13>Nov 20 04:31:02 UTC sshd[1]: the zone, not a host",
        "<13>Nov 20 04:31:02 wéb sshd[1]: not ASCII",
        "Nov 20 04:31:02 web1 sshd[812]: as syslogd writes it, no <PRI>",
    ]
    _, fast = _syslog.read_columns(lines_)
    assert fast.to_pylist() == [True, True, True, False, False, True]
    tags = ["y" * 128 + ": m", "y" * 129 + ": m", f"p[{'1' * 64}]: m", f"p[{'1' * 65}]: m", "a:x"]
    _, fast = _syslog.read_columns([f"<13>Nov 20 04:31:02 web1 {t}" for t in tags])
    assert fast.to_pylist() == [True, False, True, False, False]
