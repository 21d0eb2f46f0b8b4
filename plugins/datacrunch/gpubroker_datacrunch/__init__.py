"""GPUBROKER provider plugin for Verda (DataCrunch)."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_datacrunch.adapter import VerdaAdapter

__all__ = ["VerdaAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(VerdaAdapter)
