from tarn import events


def test_derived_ids_are_stable_and_positional() -> None:
    a = events.derive_id("parent", 0)
    assert a == events.derive_id("parent", 0)
    assert a != events.derive_id("parent", 1)
    assert a != events.derive_id("other", 0)
    # Positions are not concatenated ambiguously.
    assert events.derive_id("p", "1", "23") != events.derive_id("p", "12", "3")


def test_make_event_sets_versioned_type_and_source() -> None:
    e = events.make_event(events.OBJECT_RAW, "ingestor", {"k": 1}, id_="abc", subject="raw/x")
    assert e["type"] == "dev.tarn.object.raw.v1"
    assert e["source"] == "/tarn/ingestor"
    assert e["id"] == "abc"
    assert e["subject"] == "raw/x"
    assert e.get_data() == {"k": 1}


def test_every_emitted_type_is_versioned() -> None:
    for types in events.EMITS.values():
        for t in types:
            assert t.startswith("dev.tarn.") and t.rsplit(".", 1)[1].startswith("v")
