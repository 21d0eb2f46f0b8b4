"""Reading request bodies and query strings: JSON, and never a NUL character.

PostgreSQL cannot store U+0000 in text or JSON, so a NUL anywhere in a body or parameter is
refused up front (a 400 naming the body, or a 422 naming the parameter) rather than reaching
the database as a server error.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from ninja.parser import Parser

from gpubroker.gateway.errors import invalid


class StrictParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = orjson.loads(request.body)
        if _has_nul(data):
            raise ValueError("text in the body must not contain NUL characters")
        return data  # type: ignore[no-any-return]

    def parse_querydict(self, data: MultiValueDict, list_fields: list[str], request: HttpRequest) -> dict[str, Any]:
        for name, values in data.lists():
            if any("\x00" in value for value in values):
                raise invalid(name, f"{name} must not contain NUL characters")
        return super().parse_querydict(data, list_fields, request)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False
