"""GPUBROKER provider plugin for FluidStack."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_fluidstack.adapter import FluidStackAdapter

__all__ = ["FluidStackAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(FluidStackAdapter)
