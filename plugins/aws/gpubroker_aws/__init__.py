"""GPUBROKER provider plugin for Amazon Web Services."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_aws.adapter import AwsAdapter

__all__ = ["AwsAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(AwsAdapter)
