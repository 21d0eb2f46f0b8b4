"""GPUBROKER provider plugin for RunPod."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_runpod.adapter import RunpodAdapter

__all__ = ["RunpodAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(RunpodAdapter)
