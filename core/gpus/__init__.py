"""The canonical GPU catalogue and the resolver from providers' GPU names to its families."""

from gpubroker.core.gpus.catalog import CATALOG, GpuSpec, get
from gpubroker.core.gpus.resolver import GpuMatch, resolve
from gpubroker.core.gpus.unknown import UnknownGpuNames

__all__ = ["CATALOG", "GpuMatch", "GpuSpec", "UnknownGpuNames", "get", "resolve"]
