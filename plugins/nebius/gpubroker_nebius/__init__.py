"""GPUBROKER provider plugin for Nebius AI Cloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_nebius.adapter import NebiusAdapter

__all__ = ["NebiusAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(NebiusAdapter)
