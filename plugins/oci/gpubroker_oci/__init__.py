"""GPUBROKER provider plugin for Oracle Cloud Infrastructure."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_oci.adapter import OciAdapter

__all__ = ["OciAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(OciAdapter)
