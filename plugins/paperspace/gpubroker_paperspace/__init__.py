"""GPUBROKER provider plugin for Paperspace."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_paperspace.adapter import PaperspaceAdapter

__all__ = ["PaperspaceAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(PaperspaceAdapter)
