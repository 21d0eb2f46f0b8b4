"""GPUBROKER provider plugin for Genesis Cloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_genesiscloud.adapter import GenesisCloudAdapter

__all__ = ["GenesisCloudAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(GenesisCloudAdapter)
