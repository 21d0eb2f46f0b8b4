"""The EC2 GPU instance families listed, with the GPU each carries: the Price List never names it.

Price List rows give an instance's GPU *count* (column ``GPU``) but not the GPU model; AWS
publishes that in the instance-type pages (aws.amazon.com/ec2/instance-types/<family>/) and in
``DescribeInstanceTypes`` (which needs credentials). The names are the ones
``DescribeInstanceTypes`` reports (``GpuInfo.Gpus[].Name``); memory is per GPU, in GB.
Fractional-GPU families (g6f, gr6f) are left out (an offer's GPU count must be whole), and so
are families not yet checked here (p6-b300, p6e-gb200 UltraServers, g5g on Graviton, g7e).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Family:
    gpu_name: str
    gpu_memory_gb: float
    cpu_arch: str = "x86_64"


FAMILIES: dict[str, Family] = {
    "p3": Family("V100", 16),
    "p3dn": Family("V100", 32),
    "p4d": Family("A100", 40),
    "p4de": Family("A100", 80),
    "p5": Family("H100", 80),
    "p5e": Family("H200", 141),
    "p5en": Family("H200", 141),
    "p6-b200": Family("B200", 180),
    "g4dn": Family("T4", 16),
    "g4ad": Family("Radeon Pro V520", 8),
    "g5": Family("A10G", 24),
    "g6": Family("L4", 24),
    "g6e": Family("L40S", 48),
    "gr6": Family("L4", 24),
}

# A quoted instance type of a listed family, for a cheap byte-level pre-filter of CSV lines.
INSTANCE_TYPE = re.compile(rb'"(' + b"|".join(re.escape(f.encode()) for f in FAMILIES) + rb')\.[0-9a-z]+"')


def family_of(instance_type: str) -> Family | None:
    return FAMILIES.get(instance_type.split(".", 1)[0])
