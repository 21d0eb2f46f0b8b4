"""GPUBROKER provider plugin for Lambda Cloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_lambdalabs.adapter import LambdaCloudAdapter

__all__ = ["LambdaCloudAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(LambdaCloudAdapter)
