"""GPUBROKER provider plugin for Google Cloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_gcp.adapter import GcpAdapter

__all__ = ["GcpAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(GcpAdapter)
