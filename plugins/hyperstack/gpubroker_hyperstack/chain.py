"""A call that carries what an earlier answer said to the parse of its own answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpubroker.core.adapter import Call


@dataclass(frozen=True)
class ChainedCall(Call):
    """``parse`` sees one response at a time and ``normalise`` one record at a time, so the
    pricebook and the flavor list, two endpoints, can only meet if the flavors call carries the
    prices. ``carry`` is never sent: the transport sends a call's method, path, params, JSON
    body and headers only, and the poller's de-duplication key ignores it too."""

    carry: Mapping[str, Any] = field(default_factory=dict)


def carried(call: Call) -> Mapping[str, Any]:
    """What ``call`` carries; a plain ``Call`` carries nothing."""
    return call.carry if isinstance(call, ChainedCall) else {}
