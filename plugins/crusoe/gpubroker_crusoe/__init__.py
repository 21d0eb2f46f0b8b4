"""GPUBROKER provider plugin for Crusoe Cloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_crusoe.adapter import CrusoeAdapter

__all__ = ["CrusoeAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(CrusoeAdapter)
