"""GPUBROKER provider plugin for Scaleway."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_scaleway.adapter import ScalewayAdapter

__all__ = ["ScalewayAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(ScalewayAdapter)
