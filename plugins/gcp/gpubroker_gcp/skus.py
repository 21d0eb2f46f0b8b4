"""What a Compute Engine SKU prices, read from its description.

The Billing Catalog prices a GPU machine in parts, each its own SKU per region and usage type:
a GPU-hour ("Nvidia Tesla T4 GPU running in Americas"; Spot: "Nvidia Tesla T4 GPU attached to
Spot Preemptible VMs running in Americas"), a machine family's vCPU-hour ("A2 Instance Core
running in Americas") and GiB-hour ("A2 Instance Ram running in Americas"; Spot: "Spot
Preemptible A2 Instance Ram ..."). A4 machines are billed per GPU slice of the machine ("A4
Nvidia B200 (1 gpu slice) running in Americas"): one GPU with its share of vCPUs and memory,
a whole-machine price, never to be added to core and RAM prices. Commitments, reservations,
sole tenancy, Virtual Workstation licences and the Dynamic Workload Scheduler's modes are not
prices of an on-demand or Spot machine and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["gpu", "core", "ram", "slice"]
UNITS: dict[Kind, str] = {"gpu": "h", "core": "h", "ram": "GiBy.h", "slice": "h"}
"""The usage unit each kind of SKU is priced in."""

GPU_MEMORY_GB = {
    "nvidia-tesla-t4": 16, "nvidia-tesla-p4": 8, "nvidia-tesla-p100": 16, "nvidia-tesla-v100": 16,
    "nvidia-tesla-a100": 40, "nvidia-a100-80gb": 80, "nvidia-l4": 24, "nvidia-h100-80gb": 80,
    "nvidia-h100-mega-80gb": 80, "nvidia-rtx-pro-6000": 96, "nvidia-b200": 180,
}  # fmt: skip
"""Memory of one GPU of each Compute Engine accelerator type (https://cloud.google.com/compute/docs/gpus)."""

# Description stems (lower case, before " running in", without the Spot wording) -> what they price.
STEMS: dict[str, tuple[Kind, str]] = {
    "nvidia tesla t4 gpu": ("gpu", "nvidia-tesla-t4"),
    "nvidia tesla p4 gpu": ("gpu", "nvidia-tesla-p4"),
    "nvidia tesla p100 gpu": ("gpu", "nvidia-tesla-p100"),
    "nvidia tesla v100 gpu": ("gpu", "nvidia-tesla-v100"),
    "nvidia tesla a100 gpu": ("gpu", "nvidia-tesla-a100"),
    "nvidia tesla a100 80gb gpu": ("gpu", "nvidia-a100-80gb"),
    "nvidia a100 80gb gpu": ("gpu", "nvidia-a100-80gb"),
    "nvidia l4 gpu": ("gpu", "nvidia-l4"),
    "nvidia h100 80gb gpu": ("gpu", "nvidia-h100-80gb"),
    "nvidia h100 80gb mega gpu": ("gpu", "nvidia-h100-mega-80gb"),
    "nvidia h100 80gb plus gpu": ("gpu", "nvidia-h100-mega-80gb"),
    "rtx 6000 96gb": ("gpu", "nvidia-rtx-pro-6000"),
    "a4 nvidia b200 (1 gpu slice)": ("slice", "nvidia-b200"),
    "n1 predefined instance core": ("core", "n1"),
    "n1 predefined instance ram": ("ram", "n1"),
    "a2 instance core": ("core", "a2"),
    "a2 instance ram": ("ram", "a2"),
    "a3 instance core": ("core", "a3"),
    "a3 instance ram": ("ram", "a3"),
    "a3plus instance core": ("core", "a3-mega"),
    "a3plus instance ram": ("ram", "a3-mega"),
    "g2 instance core": ("core", "g2"),
    "g2 instance ram": ("ram", "g2"),
    "g4 instance core": ("core", "g4"),
    "g4 instance ram": ("ram", "g4"),
}

_ATTACHED = re.compile(r" attached to [a-z0-9 ]*vms$")
_SKIPPED = ("commitment", "reserved", "sole tenancy", "virtual workstation", "dws", "calendar", "flex")


@dataclass(frozen=True, slots=True)
class Part:
    kind: Kind
    key: str
    """The accelerator type (``gpu``, ``slice``) or the machine family (``core``, ``ram``)."""


def part_for(description: str) -> Part | None:
    """The part of a GPU machine a SKU prices, or ``None`` for anything else."""
    text = " ".join(description.lower().split())
    if any(word in text for word in _SKIPPED):
        return None
    text = text.removeprefix("spot preemptible ")
    stem = _ATTACHED.sub("", text.split(" running in ", 1)[0])
    found = STEMS.get(stem)
    return Part(*found) if found else None
