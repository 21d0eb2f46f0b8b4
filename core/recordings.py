"""Recorded provider payloads: the manifest format shared by the replay server and snapshots.

A plugin keeps its recordings in a package folder with ``manifest.json``::

    {"provider": "vastai", "captured_at": "2026-11-25T12:00:00Z", "format_note": "...",
     "scenarios": {"default": [{"request": {"method": "POST", "path": "/api/v0/bundles/",
                                            "match_json": {"type": "on-demand"}},
                                "response": {"status": 200, "headers": {...},
                                             "body_file": "bundles.json"}}], ...}}

A request matches an exchange when method and path are equal and ``match_query`` /
``match_json`` are subsets of the request's query and JSON body (a ``q`` query parameter that
holds JSON is compared as JSON). The first match wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from importlib.resources.abc import Traversable
from typing import Any

import orjson


@dataclass(frozen=True)
class RecordedResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    match_query: Mapping[str, Any]
    match_json: Any
    response: RecordedResponse

    def matches(self, method: str, path: str, query: Mapping[str, str], body: Any) -> bool:
        if method.upper() != self.method or _norm_path(path) != _norm_path(self.path):
            return False
        for name, expected in self.match_query.items():
            if name not in query:
                return False
            actual: Any = query[name]
            if not isinstance(expected, str):
                try:
                    actual = orjson.loads(actual)
                except orjson.JSONDecodeError:
                    return False
            if not _subset(expected, actual):
                return False
        return self.match_json is None or _subset(self.match_json, body)


class Recordings:
    """A plugin's manifest and payloads, read lazily from its package folder."""

    def __init__(self, folder: Traversable) -> None:
        self._folder = folder

    @cached_property
    def _manifest(self) -> dict[str, Any]:
        return orjson.loads(self._folder.joinpath("manifest.json").read_bytes())

    @property
    def provider(self) -> str:
        return str(self._manifest["provider"])

    @property
    def captured_at(self) -> datetime:
        return datetime.fromisoformat(self._manifest["captured_at"])

    def scenarios(self) -> list[str]:
        return sorted(self._manifest["scenarios"])

    def exchanges(self, scenario: str = "default") -> list[Exchange]:
        try:
            raw = self._manifest["scenarios"][scenario]
        except KeyError:
            raise KeyError(f"{self.provider} recordings have no scenario {scenario!r}") from None
        return [self._exchange(item) for item in raw]

    def find(
        self, method: str, path: str, query: Mapping[str, str], body: Any, scenario: str = "default"
    ) -> Exchange | None:
        return next((x for x in self.exchanges(scenario) if x.matches(method, path, query, body)), None)

    def _exchange(self, item: Mapping[str, Any]) -> Exchange:
        request, response = item["request"], item["response"]
        body = b""
        if "body_file" in response:
            body = self._folder.joinpath(response["body_file"]).read_bytes()
        elif "body" in response:
            body = response["body"].encode()
        return Exchange(
            method=request["method"].upper(),
            path=request["path"],
            match_query=request.get("match_query", {}),
            match_json=request.get("match_json"),
            response=RecordedResponse(int(response["status"]), dict(response.get("headers", {})), body),
        )


def _norm_path(path: str) -> str:
    return "/" + path.strip("/")


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _subset(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)
