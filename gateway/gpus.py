"""``GET /api/v2/gpus``: the GPU catalogue, rendered once (it changes only with a release)."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from gpubroker.core.gpus import CATALOG, GpuSpec


def _variant(spec: GpuSpec) -> list[dict[str, Any]]:
    return [
        {
            "memory_gb": variant.memory_gb,
            "form_factor": variant.form_factor,
            "fp16_tflops": variant.figures.fp16_tflops,
            "fp32_tflops": variant.figures.fp32_tflops,
            "bandwidth_gbs": variant.figures.bandwidth_gbs,
        }
        for variant in spec.variants
    ]


def gpu_json(spec: GpuSpec) -> dict[str, Any]:
    figures = spec.figures()
    return {
        "name": spec.name,
        "vendor": spec.vendor,
        "architecture": spec.architecture,
        "class": spec.gpu_class,
        "compute_capability": spec.compute_capability_number,
        "memory_gb": list(spec.memory_gb),
        "aliases": list(spec.aliases),
        "fp16_tflops": figures.fp16_tflops,
        "fp32_tflops": figures.fp32_tflops,
        "bandwidth_gbs": figures.bandwidth_gbs,
        "variants": _variant(spec),
    }


@cache
def rendered(vendor: str | None) -> bytes:
    """The catalogue (optionally one vendor's) as JSON bytes, sorted by vendor then name."""
    specs = sorted(CATALOG.values(), key=lambda spec: (spec.vendor, spec.name))
    items = [gpu_json(spec) for spec in specs if vendor is None or spec.vendor == vendor]
    return orjson.dumps({"items": items, "count": len(items)})


VENDORS = tuple(sorted({spec.vendor for spec in CATALOG.values()}))
