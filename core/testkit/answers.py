"""Recorded answers for the schema checks: which to check, and the same answers made to drift.

The conformance kit proves that a plugin's answer schemas can fail: it puts a field no reference
defines into every kind of object of a recorded answer and expects it reported, and serves a
copy of the recordings with such a field to the drift probe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import orjson

from gpubroker.core.recordings import Exchange, Recordings

UNDEFINED_FIELD = "gpubroker_undefined_field"
"""A field name no provider's reference defines."""


def successful_answers(recordings: Recordings, scenario: str | None = None) -> Iterator[tuple[str, Exchange]]:
    """Every recorded 2xx answer with a body, as (scenario, exchange)."""
    for name in [scenario] if scenario else recordings.scenarios():
        for exchange in recordings.exchanges(name):
            if 200 <= exchange.response.status < 300 and exchange.response.body:
                yield name, exchange


def object_locations(document: Any) -> list[tuple[str, tuple[str | int, ...]]]:
    """The first place of every kind of object in ``document``: (path with array positions
    folded to ``[]``, the real path to it).

    Objects are of one kind when they sit at the same folded path, or hold the same set of
    fields (the values of a map keyed by names, such as instance types by name), so a large
    answer is checked once per kind rather than once per object.
    """
    found: dict[str, tuple[str | int, ...]] = {}
    kinds: set[frozenset[str]] = set()

    def walk(value: Any, folded: str, real: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            kind = frozenset(value)
            if folded not in found and (kind not in kinds or not kind):
                found[folded] = real
                kinds.add(kind)
            for key, item in value.items():
                walk(item, f"{folded}/{key}", (*real, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{folded}/[]", (*real, index))

    walk(document, "", ())
    return list(found.items())


def with_undefined_field(document: Any, location: Sequence[str | int]) -> Any:
    """A copy of ``document`` whose object at ``location`` holds ``UNDEFINED_FIELD``.

    Its value is an object holding the same field, so an open map whose values are closed
    objects is caught as surely as a closed object.
    """
    copy = orjson.loads(orjson.dumps(document))
    target = copy
    for part in location:
        target = target[part]
    target[UNDEFINED_FIELD] = {UNDEFINED_FIELD: None}
    return copy


def drifted_recordings(recordings: Recordings, folder: Traversable, into: Path) -> tuple[Path, str]:
    """A copy of ``folder`` in ``into`` whose first successful JSON answer of the default
    scenario holds ``UNDEFINED_FIELD`` in its first object; returns the folder and that
    answer's ``METHOD /path``."""
    target = into / "drifted-recordings"
    target.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.is_file():
            (target / item.name).write_bytes(item.read_bytes())
    manifest = orjson.loads((target / "manifest.json").read_bytes())
    for entry in manifest["scenarios"]["default"]:
        response = entry["response"]
        if not 200 <= int(response["status"]) < 300 or "body_file" not in response:
            continue
        try:
            document = orjson.loads((target / response["body_file"]).read_bytes())
        except orjson.JSONDecodeError:
            continue
        locations = object_locations(document)
        if not locations:
            continue
        (target / "drifted.json").write_bytes(orjson.dumps(with_undefined_field(document, locations[0][1])))
        response["body_file"] = "drifted.json"
        (target / "manifest.json").write_bytes(orjson.dumps(manifest))
        request = entry["request"]
        return target, f"{request['method'].upper()} {request['path']}"
    raise AssertionError(f"{recordings.provider}: the default scenario has no successful JSON answer to drift")
