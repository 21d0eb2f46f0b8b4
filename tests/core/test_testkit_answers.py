"""The conformance kit's recorded-answer helpers: kinds of objects, undefined fields, drifted copies."""

from __future__ import annotations

from pathlib import Path

import orjson

from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.answers import (
    UNDEFINED_FIELD,
    drifted_recordings,
    object_locations,
    successful_answers,
    with_undefined_field,
)
from gpubroker_vultr.adapter import VultrAdapter


def test_each_kind_of_object_is_found_once() -> None:
    document = {
        "items": [{"id": 1, "gpu": {"name": "A"}}, {"id": 2, "gpu": {"name": "B"}}],
        "types": {"small": {"cpus": 1}, "large": {"cpus": 8}},  # a map: its values are one kind
        "meta": {},
    }
    assert object_locations(document) == [
        ("", ()),
        ("/items/[]", ("items", 0)),
        ("/items/[]/gpu", ("items", 0, "gpu")),
        ("/types", ("types",)),
        ("/types/small", ("types", "small")),
        ("/meta", ("meta",)),
    ]


def test_an_undefined_field_goes_into_a_copy() -> None:
    document = {"items": [{"id": 1}]}
    changed = with_undefined_field(document, ("items", 0))
    assert changed == {"items": [{"id": 1, UNDEFINED_FIELD: {UNDEFINED_FIELD: None}}]}
    assert document == {"items": [{"id": 1}]}


def test_a_drifted_copy_changes_only_the_first_answer(tmp_path: Path) -> None:
    assert VultrAdapter.recordings is not None
    original = Recordings(VultrAdapter.recordings)
    folder, answer = drifted_recordings(original, VultrAdapter.recordings, tmp_path)
    drifted = Recordings(folder)
    first = drifted.exchanges()[0]
    assert answer == f"{first.method} {first.path}"
    assert UNDEFINED_FIELD in orjson.loads(first.response.body)
    assert drifted.exchanges()[1:] == original.exchanges()[1:]
    assert [scenario for scenario, _ in successful_answers(original, "empty")] == ["empty", "empty"]
