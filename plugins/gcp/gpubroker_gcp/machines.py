"""Compute Engine GPU machine types: their fixed shapes, from Google's public documentation.

The Billing Catalog prices parts (a family's vCPU-hour and GiB-hour, a GPU-hour), never a
machine type, and says nothing about shapes. The shapes below are Google's:

- accelerator-optimised families (A2, A3, A4, G2, G4), whose machine types each come with a
  fixed number of GPUs, vCPUs and memory:
  https://cloud.google.com/compute/docs/accelerator-optimized-machines (machine type tables) and
  https://cloud.google.com/compute/docs/gpus (GPU models per machine series);
- N1 with attachable GPUs (T4, P4, P100, V100), where any N1 shape up to a per-GPU-count limit
  may carry the GPUs (https://cloud.google.com/compute/docs/gpus, "N1 general-purpose machine
  types"). One common shape is listed per GPU count: n1-standard with 8 vCPUs and 30 GB per GPU
  (n1-standard-8 for one GPU, -16 for two, -32 for four, -64 for eight), within every limit.

Memory is in GB as Google's tables state it; the catalogue bills it per GiB-hour and the
machine types' memory is that many GiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Billing = Literal["parts", "slices"]


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    family: str
    """The vCPU and memory SKUs' family (``n1``, ``a2``, ``a3``, ``g2``, ...)."""
    accelerator: str
    """The GPU's Compute Engine accelerator type (``gpus.py``)."""
    gpus: int
    vcpus: int
    ram_gb: float
    billing: Billing = "parts"
    """``parts``: vCPUs x core price + GB x RAM price + GPUs x GPU price. ``slices``: GPUs x the
    price of one GPU's slice of the machine, which already holds its vCPUs and memory."""

    @property
    def key(self) -> str:
        """Unique among machines: an N1 shape carries several GPU types and counts."""
        return f"{self.name}+{self.gpus}x{self.accelerator}" if self.family == "n1" else self.name

    @property
    def label(self) -> str:
        return f"{self.name} + {self.gpus} x {self.accelerator}" if self.family == "n1" else self.name


def _series(prefix: str, family: str, accelerator: str, shapes: list[tuple[str, int, int, float]]) -> list[Machine]:
    return [Machine(f"{prefix}-{suffix}", family, accelerator, g, c, m) for suffix, g, c, m in shapes]


MACHINES: tuple[Machine, ...] = (
    # A2 Standard (A100 40GB) and A2 Ultra (A100 80GB).
    *_series("a2-highgpu", "a2", "nvidia-tesla-a100", [
        ("1g", 1, 12, 85), ("2g", 2, 24, 170), ("4g", 4, 48, 340), ("8g", 8, 96, 680),
    ]),
    Machine("a2-megagpu-16g", "a2", "nvidia-tesla-a100", 16, 96, 1360),
    *_series("a2-ultragpu", "a2", "nvidia-a100-80gb", [
        ("1g", 1, 12, 170), ("2g", 2, 24, 340), ("4g", 4, 48, 680), ("8g", 8, 96, 1360),
    ]),
    # A3 High (H100 80GB) and A3 Mega (H100 80GB Mega).
    *_series("a3-highgpu", "a3", "nvidia-h100-80gb", [
        ("1g", 1, 26, 234), ("2g", 2, 52, 468), ("4g", 4, 104, 936), ("8g", 8, 208, 1872),
    ]),
    Machine("a3-megagpu-8g", "a3-mega", "nvidia-h100-mega-80gb", 8, 208, 1872),
    # A4 (B200): sold as whole machines, billed per GPU slice of the machine.
    Machine("a4-highgpu-8g", "a4", "nvidia-b200", 8, 224, 3968, billing="slices"),
    # G2 (L4).
    *_series("g2-standard", "g2", "nvidia-l4", [
        ("4", 1, 4, 16), ("8", 1, 8, 32), ("12", 1, 12, 48), ("16", 1, 16, 64),
        ("24", 2, 24, 96), ("32", 1, 32, 128), ("48", 4, 48, 192), ("96", 8, 96, 384),
    ]),
    # G4 (RTX PRO 6000 Blackwell).
    *_series("g4-standard", "g4", "nvidia-rtx-pro-6000", [
        ("48", 1, 48, 180), ("96", 2, 96, 360), ("192", 4, 192, 720), ("384", 8, 384, 1440),
    ]),
    # N1 with attachable GPUs: n1-standard-(8 x GPUs), 3.75 GB per vCPU.
    *[
        Machine(f"n1-standard-{8 * n}", "n1", accelerator, n, 8 * n, 30.0 * n)
        for accelerator, counts in (
            ("nvidia-tesla-t4", (1, 2, 4)),
            ("nvidia-tesla-p4", (1, 2, 4)),
            ("nvidia-tesla-p100", (1, 2, 4)),
            ("nvidia-tesla-v100", (1, 2, 4, 8)),
        )
        for n in counts
    ],
)  # fmt: skip
