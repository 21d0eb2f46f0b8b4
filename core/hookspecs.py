"""The plugin API: every hook a GPUBROKER plugin can implement.

This module is the plugin author's reference. Implement a hook by decorating a function of
the same name with ``hookimpl`` in the module your distribution registers under the
``gpubroker.providers`` entry-point group. The API version is ``PLUGIN_API_VERSION``; hooks are
only ever added or given new optional arguments, never changed in place.

Version 2 added renting, without a new hook: an adapter that lists actions in ``renting``
implements the matching optional methods of ``ProviderAdapter`` (``provision_call``,
``status_call``, ``instances_call``, ``scale_call``, ``terminate_call``, their ``read_*``
counterparts and ``read_refusal``), which describe calls like ``calls`` does; see
``gpubroker.core.renting``. A version 1 plugin keeps working unchanged: it lists offers only.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from gpubroker.core.adapter import ProviderAdapter

PROJECT = "gpubroker"
PLUGIN_API_VERSION = 2

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gpubroker_register_providers(register: Callable[[type[ProviderAdapter]], None]) -> None:
    """Register the provider adapters this plugin ships.

    Call ``register(AdapterClass)`` once per provider. The host validates each class (its
    ``info`` metadata, a unique name) and reports a clear error naming the plugin otherwise.

    :param register: the host's callback; takes a ``ProviderAdapter`` subclass.

    .. versionadded:: 1
    """
