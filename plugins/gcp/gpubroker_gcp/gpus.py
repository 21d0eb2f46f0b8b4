"""How Compute Engine GPU SKUs are described, and which GPU counts a VM can attach.

The Billing Catalog prices a GPU per GPU-hour in SKUs described like "Nvidia Tesla T4 GPU
running in Americas" (on-demand) or "Nvidia Tesla T4 GPU attached to Spot Preemptible VMs
running in Americas" (Spot). The catalogue says nothing about which counts can be attached, so
the counts here follow the machine types Google documents for each GPU (N1 attachments, A2, A3,
A4, G2, G4). The GPU name is Compute Engine's accelerator type, the name GCP itself uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gpu:
    accelerator_type: str
    memory_gb: float
    counts: tuple[int, ...]


# Description stem (lower case, before " running in", without the "attached to ... VMs" part).
GPUS: dict[str, Gpu] = {
    "nvidia tesla t4 gpu": Gpu("nvidia-tesla-t4", 16, (1, 2, 4)),
    "nvidia tesla p4 gpu": Gpu("nvidia-tesla-p4", 8, (1, 2, 4)),
    "nvidia tesla p100 gpu": Gpu("nvidia-tesla-p100", 16, (1, 2, 4)),
    "nvidia tesla v100 gpu": Gpu("nvidia-tesla-v100", 16, (1, 2, 4, 8)),
    "nvidia tesla a100 gpu": Gpu("nvidia-tesla-a100", 40, (1, 2, 4, 8, 16)),
    "nvidia tesla a100 80gb gpu": Gpu("nvidia-a100-80gb", 80, (1, 2, 4, 8)),
    "nvidia a100 80gb gpu": Gpu("nvidia-a100-80gb", 80, (1, 2, 4, 8)),
    "nvidia l4 gpu": Gpu("nvidia-l4", 24, (1, 2, 4, 8)),
    "nvidia h100 80gb gpu": Gpu("nvidia-h100-80gb", 80, (1, 2, 4, 8)),
    "nvidia h100 80gb mega gpu": Gpu("nvidia-h100-mega-80gb", 80, (8,)),
    "nvidia h100 80gb plus gpu": Gpu("nvidia-h100-mega-80gb", 80, (8,)),
    "rtx 6000 96gb": Gpu("nvidia-rtx-pro-6000", 96, (1, 2, 4, 8)),
    "a4 nvidia b200 (1 gpu slice)": Gpu("nvidia-b200", 180, (8,)),
}

_ATTACHED = re.compile(r" attached to [a-z0-9 ]*vms$")
_SKIPPED = ("commitment", "reserved", "sole tenancy", "virtual workstation", "dws", "calendar", "flex")


def gpu_for(description: str) -> Gpu | None:
    """The GPU a SKU description prices, or ``None`` for anything else (cores, RAM, licences,
    commitments, reservations and the Dynamic Workload Scheduler's flex/calendar modes)."""
    text = " ".join(description.lower().split())
    if any(word in text for word in _SKIPPED):
        return None
    text = text.removeprefix("spot preemptible ")
    stem = _ATTACHED.sub("", text.split(" running in ", 1)[0])
    return GPUS.get(stem)
