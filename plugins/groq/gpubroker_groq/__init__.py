"""GPUBROKER provider plugin for Groq."""

from collections.abc import Callable

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.hookspecs import hookimpl
from gpubroker_groq.adapter import GroqAdapter

__all__ = ["GroqAdapter"]


@hookimpl
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    register(GroqAdapter)
