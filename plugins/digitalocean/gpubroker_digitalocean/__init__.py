"""GPUBROKER provider plugin for DigitalOcean."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_digitalocean.adapter import DigitaloceanAdapter

__all__ = ["DigitaloceanAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(DigitaloceanAdapter)
