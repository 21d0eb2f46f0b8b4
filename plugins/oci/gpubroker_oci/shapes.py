"""Which OCI GPU shapes each price-list part number bills, since the price list names no shape.

The cost estimator's products list prices a *part number* per GPU-hour ("GPU Per Hour"); it
never says which Compute shapes use that part, how many GPUs a shape has or how much memory
they carry. That mapping lives only in Oracle's documentation (Compute shapes reference,
docs.oracle.com/en-us/iaas/Content/Compute/References/computeshapes.htm), so it is kept here as
a small table. A part number missing from it is skipped (its offers cannot be sized), and the
README lists the known-but-unmapped parts.

``vcpus`` counts threads: an x86 OCPU is two vCPUs. ``ram_gb`` is the shape's host memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    gpu_name: str
    gpu_count: int
    gpu_memory_gb: float
    vcpus: int
    ram_gb: float
    cpu_arch: str = "x86_64"


SHAPES_BY_PART: dict[str, tuple[Shape, ...]] = {
    # "Compute - Virtual Machine GPU Standard - X7" / "... Bare Metal GPU Standard - X7"
    "B88518": (Shape("VM.GPU2.1", "NVIDIA Tesla P100", 1, 16, 24, 72),),
    "B88517": (Shape("BM.GPU2.2", "NVIDIA Tesla P100", 2, 16, 56, 192),),
    # "Compute - GPU Standard - V2"
    "B89734": (
        Shape("VM.GPU3.1", "NVIDIA Tesla V100", 1, 16, 12, 90),
        Shape("VM.GPU3.2", "NVIDIA Tesla V100", 2, 16, 24, 180),
        Shape("VM.GPU3.4", "NVIDIA Tesla V100", 4, 16, 48, 360),
        Shape("BM.GPU3.8", "NVIDIA Tesla V100", 8, 16, 104, 768),
    ),
    # "Compute - GPU - E3"
    "B92740": (Shape("BM.GPU4.8", "NVIDIA A100 40GB", 8, 40, 128, 2048),),
    # "Compute - GPU - A100 - v2"
    "B95907": (Shape("BM.GPU.A100-v2.8", "NVIDIA A100 80GB", 8, 80, 256, 2048),),
    # "Compute - GPU - A10"
    "B95909": (
        Shape("VM.GPU.A10.1", "NVIDIA A10", 1, 24, 30, 240),
        Shape("VM.GPU.A10.2", "NVIDIA A10", 2, 24, 60, 480),
        Shape("BM.GPU.A10.4", "NVIDIA A10", 4, 24, 128, 1024),
    ),
    # "... Compute - GPU - H100"
    "B98415": (Shape("BM.GPU.H100.8", "NVIDIA H100 80GB", 8, 80, 224, 2048),),
    # "OCI - Compute - GPU - H200"
    "B110519": (Shape("BM.GPU.H200.8", "NVIDIA H200 141GB", 8, 141, 224, 3072),),
    # "Compute - GPU - L40S"
    "B109479": (Shape("BM.GPU.L40S-NC.4", "NVIDIA L40S", 4, 48, 224, 1024),),
    # "OCI - Compute - GPU - MI300X"
    "B109485": (Shape("BM.GPU.MI300X.8", "AMD Instinct MI300X", 8, 192, 224, 2048),),
    # "OCI - Compute - GPU - B200"
    "B110978": (Shape("BM.GPU.B200.8", "NVIDIA B200 180GB", 8, 180, 256, 4096),),
    # "OCI - Compute - GPU - GB200": Grace (Arm) hosts, 144 cores
    "B110979": (Shape("BM.GPU.GB200.4", "NVIDIA GB200 192GB", 4, 192, 144, 960, "arm64"),),
}
