"""GPUBROKER provider plugin for Microsoft Azure."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_azure.adapter import AzureAdapter

__all__ = ["AzureAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(AzureAdapter)
