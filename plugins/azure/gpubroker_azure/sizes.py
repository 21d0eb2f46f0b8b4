"""The GPU VM sizes the plugin lists, with the hardware the Retail Prices API never states.

The Retail Prices API names a VM size (``armSkuName``) and its price, but not how many GPUs it
has, which GPU, or its vCPUs and memory. Those come from Microsoft's VM size documentation
(learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/...), kept here as a small
table. Sizes missing from it are not listed: retired series (NCv3, NDv2, NVv3, NVv4),
fractional-GPU sizes (NVadsA10 v5 below 36 vCPUs, NVadsV710 v5 partitions), whose slice of one
GPU an offer's whole-GPU count cannot express, and new series until a row is added.

``gpu_name`` is the name the GPU reports inside the VM (``nvidia-smi``/ROCm), which is also how
Microsoft's size pages describe the part.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VmSize:
    gpu_name: str
    gpu_count: int
    gpu_memory_gb: float
    vcpus: int
    ram_gb: float
    cpu_arch: str = "x86_64"


T4, A10 = "NVIDIA Tesla T4", "NVIDIA A10"
A100_PCIE, A100_40, A100_80 = "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-80GB"
H100_NVL, H100_SXM, H200, MI300X = "NVIDIA H100 NVL", "NVIDIA H100 80GB HBM3", "NVIDIA H200", "AMD Instinct MI300X"

GPU_SIZES: dict[str, VmSize] = {
    # NCasT4_v3-series: 1 or 4 NVIDIA T4
    "Standard_NC4as_T4_v3": VmSize(T4, 1, 16, 4, 28),
    "Standard_NC8as_T4_v3": VmSize(T4, 1, 16, 8, 56),
    "Standard_NC16as_T4_v3": VmSize(T4, 1, 16, 16, 110),
    "Standard_NC64as_T4_v3": VmSize(T4, 4, 16, 64, 440),
    # NVadsA10 v5-series: only the whole-GPU sizes
    "Standard_NV36ads_A10_v5": VmSize(A10, 1, 24, 36, 440),
    "Standard_NV36adms_A10_v5": VmSize(A10, 1, 24, 36, 880),
    "Standard_NV72ads_A10_v5": VmSize(A10, 2, 24, 72, 880),
    # NC A100 v4-series: A100 PCIe 80GB
    "Standard_NC24ads_A100_v4": VmSize(A100_PCIE, 1, 80, 24, 220),
    "Standard_NC48ads_A100_v4": VmSize(A100_PCIE, 2, 80, 48, 440),
    "Standard_NC96ads_A100_v4": VmSize(A100_PCIE, 4, 80, 96, 880),
    # NCads H100 v5-series: H100 NVL 94GB
    "Standard_NC40ads_H100_v5": VmSize(H100_NVL, 1, 94, 40, 320),
    "Standard_NC80adis_H100_v5": VmSize(H100_NVL, 2, 94, 80, 640),
    # ND A100 v4 / NDm A100 v4 / ND H100 v5 / ND H200 v5 / ND MI300X v5: 8-GPU nodes
    "Standard_ND96asr_v4": VmSize(A100_40, 8, 40, 96, 900),
    "Standard_ND96amsr_A100_v4": VmSize(A100_80, 8, 80, 96, 1900),
    "Standard_ND96isr_H100_v5": VmSize(H100_SXM, 8, 80, 96, 1900),
    "Standard_ND96isr_H200_v5": VmSize(H200, 8, 141, 96, 1850),
    "Standard_ND96isr_MI300X_v5": VmSize(MI300X, 8, 192, 96, 1850),
}
