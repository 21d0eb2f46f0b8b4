"""An offer's datasheet throughput: what the performance and value sorts and TOPSIS rank by."""

from __future__ import annotations

from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Offer


def performance_tflops(offer: Offer) -> float | None:
    """Dense FP16/BF16 TFLOPS of the whole offer (per GPU, for its memory size and form factor
    where variants differ, times the GPU count), or None when the catalogue has no figure.

    When the figures differ by variant and the offer does not say which it is, the lowest is
    taken: a ranking must never flatter an offer on a guess.
    """
    match = resolve(offer.gpu_name)
    spec = match.spec
    if spec is None:
        return None
    memory = int(offer.gpu_memory_gb) if offer.gpu_memory_gb else match.memory_gb
    tflops = spec.figures(memory_gb=memory, form_factor=match.form_factor).fp16_tflops
    if tflops is None:
        known = [v.figures.fp16_tflops for v in spec.variants if v.figures.fp16_tflops is not None]
        tflops = min(known) if known else None
    return None if tflops is None else tflops * offer.gpu_count
