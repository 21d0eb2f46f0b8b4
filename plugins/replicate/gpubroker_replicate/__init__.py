"""GPUBROKER provider plugin for Replicate."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_replicate.adapter import ReplicateAdapter

__all__ = ["ReplicateAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(ReplicateAdapter)
