"""Finding, loading and validating provider plugins.

Plugins are distributions that register a module under the ``gpubroker.providers`` entry-point
group; bundled plugins are loaded the same way as anyone else's. Which ones load is controlled by
an allow-list and a block-list (``GPUBROKER_PLUGINS`` / ``GPUBROKER_PLUGINS_BLOCKED``).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType

import pluggy
from pydantic import ValidationError

from gpubroker.core import hookspecs
from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.errors import PluginError
from gpubroker.core.provider import ProviderInfo

ENTRY_POINT_GROUP = "gpubroker.providers"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredProvider:
    """A provider adapter together with the distribution that shipped it."""

    adapter: type[ProviderAdapter]
    plugin: str
    version: str

    @property
    def info(self) -> ProviderInfo:
        return self.adapter.info


class ProviderRegistry:
    """The providers the loaded plugins registered, by name."""

    def __init__(self, providers: Iterable[RegisteredProvider] = ()) -> None:
        self._providers: dict[str, RegisteredProvider] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: RegisteredProvider) -> None:
        name = provider.info.name
        if name in self._providers:
            other = self._providers[name].plugin
            raise PluginError(f"provider {name!r} is registered by both {other!r} and {provider.plugin!r}")
        self._providers[name] = provider

    def get(self, name: str) -> RegisteredProvider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise PluginError(f"no provider named {name!r} is installed (installed: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._providers)

    def __iter__(self) -> Iterator[RegisteredProvider]:
        return iter(self._providers[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._providers)


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    pm: pluggy.PluginManager,
    *,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
) -> None:
    """Load entry-point plugins into ``pm``, honouring the allow- and block-lists."""
    allowed = None if allow is None else set(allow)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in block or (allowed is not None and entry_point.name not in allowed):
            pm.set_blocked(entry_point.name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} is invalid: {exc}") from None


def collect_providers(pm: pluggy.PluginManager) -> ProviderRegistry:
    """Ask every loaded plugin for its adapters and validate what they register."""
    registry = ProviderRegistry()
    distributions = {id(module): dist for module, dist in pm.list_plugin_distributions()}
    for impl in pm.hook.gpubroker_register_providers.get_hookimpls():
        plugin_name = impl.plugin_name
        dist = distributions.get(id(impl.plugin))
        version = dist.version if dist is not None else "unpackaged"

        def register(adapter: type[ProviderAdapter], _plugin: str = plugin_name, _version: str = version) -> None:
            registry.add(RegisteredProvider(_validate(adapter, _plugin), _plugin, _version))

        impl.function(register=register)
    return registry


def load_providers(
    *, allow: Iterable[str] | None = None, block: Iterable[str] = (), extra: Iterable[ModuleType] = ()
) -> ProviderRegistry:
    """Discover the installed plugins and return their providers.

    ``extra`` registers plugin modules directly (tests use it instead of installing one).
    """
    pm = new_manager()
    load_plugins(pm, allow=allow, block=block)
    for module in extra:
        pm.register(module)
    return collect_providers(pm)


def _validate(adapter: object, plugin: str) -> type[ProviderAdapter]:
    if not (isinstance(adapter, type) and issubclass(adapter, ProviderAdapter)):
        raise PluginError(f"plugin {plugin!r} registered {adapter!r}, which is not a ProviderAdapter subclass")
    info = getattr(adapter, "info", None)
    if not isinstance(info, ProviderInfo):
        try:
            ProviderInfo.model_validate(info)
        except ValidationError as exc:
            raise PluginError(f"plugin {plugin!r}: {adapter.__name__}.info is invalid: {exc}") from None
        raise PluginError(f"plugin {plugin!r}: {adapter.__name__}.info must be a ProviderInfo")
    if getattr(adapter, "__abstractmethods__", None):
        missing = ", ".join(sorted(adapter.__abstractmethods__))
        raise PluginError(f"plugin {plugin!r}: {adapter.__name__} does not implement {missing}")
    return adapter
