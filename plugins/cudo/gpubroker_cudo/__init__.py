"""GPUBROKER provider plugin for CUDO Compute."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_cudo.adapter import CudoAdapter

__all__ = ["CudoAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(CudoAdapter)
