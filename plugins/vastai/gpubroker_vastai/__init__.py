"""GPUBROKER provider plugin for Vast.ai's marketplace."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_vastai.adapter import VastAdapter

__all__ = ["VastAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(VastAdapter)
