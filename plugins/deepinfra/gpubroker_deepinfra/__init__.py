"""GPUBROKER provider plugin for DeepInfra."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_deepinfra.adapter import DeepInfraAdapter

__all__ = ["DeepInfraAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(DeepInfraAdapter)
