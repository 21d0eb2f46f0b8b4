"""Turning the API's JSON into the typed models, in one place for every model.

Answers are parsed with ``parse_float=Decimal``, so prices stay exact (the API writes them as plain
decimal numbers); a field typed ``float`` gets a float, ``Decimal`` a Decimal, ``datetime`` an
aware datetime, a model a model, ``list[X]`` and ``dict[str, X]`` their items decoded. A field
whose JSON name is not a Python name says so in its metadata (``field(metadata={"json": "class"})``).
Fields the gateway adds later are ignored, so an older client keeps working.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

T = TypeVar("T")


def loads(content: bytes | str) -> Any:
    """JSON with exact decimals."""
    return json.loads(content, parse_float=Decimal)


def json_name(item: dataclasses.Field[Any]) -> str:
    return str(item.metadata.get("json", item.name))


def decode(model: type[T], data: Any) -> T:
    """``data`` (parsed JSON) as an instance of the dataclass ``model``."""
    hints = _hints(model)
    values = {}
    for item in dataclasses.fields(model):  # type: ignore[arg-type]
        name = json_name(item)
        if name in data:
            values[item.name] = _value(hints[item.name], data[name])
    return model(**values)


@functools.cache
def _hints(model: type) -> dict[str, Any]:
    return typing.get_type_hints(model)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _value(present[0], value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_value(item, element) for element in value]
    if origin is dict:
        _, item = typing.get_args(hint)
        return {key: _value(item, element) for key, element in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(hint, value)  # type: ignore[arg-type]
    if hint is float:
        return float(value)
    if hint is Decimal:
        return Decimal(value) if not isinstance(value, Decimal) else value
    if hint is int and isinstance(value, Decimal):
        return int(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    return value
