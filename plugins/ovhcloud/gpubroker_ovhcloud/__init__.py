"""GPUBROKER provider plugin for OVHcloud."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_ovhcloud.adapter import OvhCloudAdapter

__all__ = ["OvhCloudAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(OvhCloudAdapter)
