"""GPUBROKER provider plugin for Hyperstack."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_hyperstack.adapter import HyperstackAdapter

__all__ = ["HyperstackAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(HyperstackAdapter)
