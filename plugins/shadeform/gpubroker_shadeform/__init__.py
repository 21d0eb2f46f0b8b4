"""GPUBROKER provider plugin for Shadeform."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_shadeform.adapter import ShadeformAdapter

__all__ = ["ShadeformAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(ShadeformAdapter)
