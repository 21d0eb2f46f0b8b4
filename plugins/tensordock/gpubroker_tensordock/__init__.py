"""GPUBROKER provider plugin for TensorDock."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_tensordock.adapter import TensorDockAdapter

__all__ = ["TensorDockAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(TensorDockAdapter)
