"""Ninja's JSON renderer, with orjson: prices keep their exact digits, and it is faster.

Response schemas are dumped in Python mode, so a price reaches the renderer as a ``Decimal``;
it is written as a JSON number in the wire form of ``gpubroker.core.prices`` (``20``, ``2.5``,
``0.000001``), never as a float's ``1e-06`` nor as a string.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from django.http import HttpRequest
from ninja.renderers import BaseRenderer

from gpubroker.core.prices import price_number


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return price_number(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)
