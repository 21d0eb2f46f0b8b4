"""GPUBROKER provider plugin for Seeweb."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_seeweb.adapter import SeewebAdapter

__all__ = ["SeewebAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(SeewebAdapter)
