from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import pytest

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.errors import PluginError
from gpubroker.core.hookspecs import hookimpl
from gpubroker.core.offer import Offer
from gpubroker.core.plugins import load_providers
from gpubroker.core.provider import ProviderInfo


class _Adapter(ProviderAdapter):
    info = ProviderInfo(name="acme", display_name="Acme", api_base_url="https://api.acme.test")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call("/offers")]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        return Page(records=response.json())

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        return None


def plugin_module(*adapters: object) -> ModuleType:
    module = ModuleType("acme_plugin")

    @hookimpl
    def gpubroker_register_providers(register: Callable[[Any], None]) -> None:
        for adapter in adapters:
            register(adapter)

    module.gpubroker_register_providers = gpubroker_register_providers  # type: ignore[attr-defined]
    return module


def test_installed_vastai_plugin_is_discovered_with_its_version() -> None:
    registry = load_providers()
    provider = registry.get("vastai")
    assert provider.plugin == "vastai"
    assert provider.version == "0.1.0"
    assert provider.info.display_name == "Vast.ai"


def test_allow_and_block_lists() -> None:
    assert "vastai" not in load_providers(block=["vastai"]).names()
    assert load_providers(allow=[]).names() == []
    assert load_providers(allow=["vastai"]).names() == ["vastai"]


def test_extra_plugin_modules_register_like_installed_ones() -> None:
    registry = load_providers(allow=[], extra=[plugin_module(_Adapter)])
    assert registry.names() == ["acme"]
    assert registry.get("acme").version == "unpackaged"


def test_unknown_provider_error_lists_installed_ones() -> None:
    with pytest.raises(PluginError, match=r"no provider named 'nope'.*vastai"):
        load_providers().get("nope")


def test_duplicate_provider_names_are_refused() -> None:
    with pytest.raises(PluginError, match="registered by both"):
        load_providers(allow=[], extra=[plugin_module(_Adapter, _Adapter)])


@pytest.mark.parametrize("bad", [object(), int, type("NoInfo", (_Adapter,), {"info": None})])
def test_invalid_registrations_name_the_plugin(bad: object) -> None:
    with pytest.raises(PluginError, match="acme_plugin"):
        load_providers(allow=[], extra=[plugin_module(bad)])


def test_adapter_missing_a_method_is_refused() -> None:
    incomplete = type("Incomplete", (ProviderAdapter,), {"info": _Adapter.info, "calls": _Adapter.calls})
    with pytest.raises(PluginError, match="does not implement normalise, parse"):
        load_providers(allow=[], extra=[plugin_module(incomplete)])


@pytest.mark.parametrize(
    "available, status",
    [({}, "missing: token"), ({"token": "t"}, "optional, not set"), ({"token": "t", "org": "o"}, "configured")],
)
def test_credentials_status(available: dict[str, str], status: str) -> None:
    from gpubroker.core.provider import CredentialSpec

    info = _Adapter.info.model_copy(
        update={"credentials": (CredentialSpec(name="token"), CredentialSpec(name="org", required=False))}
    )
    assert info.credentials_status(available) == status
    assert _Adapter.info.credentials_status({}) == "none needed"


def test_an_unknown_gpu_name_is_logged_once_and_never_guessed(caplog: pytest.LogCaptureFixture) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from gpubroker.core.offer import Availability

    ctx = PollContext(_Adapter.info, datetime.now(UTC))
    offers = [
        ctx.offer(
            provider_offer_id=str(i), name="x", gpu_name="Voodoo 9 Ultra", gpu_count=1,
            price_per_hour=Decimal(1), availability_status=Availability.AVAILABLE, region="r",
        )
        for i in range(3)
    ]  # fmt: skip
    assert all(offer.gpu_type is None and offer.gpu_vendor is None for offer in offers)
    assert caplog.text.count("'Voodoo 9 Ultra' is not in the catalogue") == 1
