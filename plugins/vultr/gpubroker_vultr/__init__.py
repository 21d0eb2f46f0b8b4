"""GPUBROKER provider plugin for Vultr."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_vultr.adapter import VultrAdapter

__all__ = ["VultrAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(VultrAdapter)
