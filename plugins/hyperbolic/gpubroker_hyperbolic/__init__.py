"""GPUBROKER provider plugin for Hyperbolic."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_hyperbolic.adapter import HyperbolicAdapter

__all__ = ["HyperbolicAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(HyperbolicAdapter)
