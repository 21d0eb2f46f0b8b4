import pytest

from gpubroker.core.gpus import CATALOG
from tests.gateway.conftest import GatewayClient as AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_lists_the_whole_catalogue_with_figures(client: AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    body = (await client.get("/api/v2/gpus")).json()
    assert body["count"] == len(CATALOG) == len(body["items"])
    h100 = next(item for item in body["items"] if item["name"] == "H100")
    assert h100["vendor"] == "nvidia" and 80 in h100["memory_gb"]
    assert {v["form_factor"] for v in h100["variants"]} >= {"SXM", "PCIE"}
    assert all(v["fp16_tflops"] for v in h100["variants"])
    assert h100["compute_capability"] == 9.0
    assert next(item for item in body["items"] if item["name"] == "B300")["compute_capability"] == 10.3
    assert all(item["compute_capability"] is None for item in body["items"] if item["vendor"] != "nvidia")


async def test_vendor_filter_and_bad_input(client: AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    amd = (await client.get("/api/v2/gpus", {"vendor": "AMD"})).json()
    assert amd["count"] > 0 and {item["vendor"] for item in amd["items"]} == {"amd"}
    bad = await client.get("/api/v2/gpus", {"vendor": "3dfx"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "vendor"
    assert (await client.get("/api/v2/gpus", {"colour": "red"})).status_code == 422


async def test_openapi_document_describes_the_endpoints(client: AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    document = (await client.get("/api/v2/openapi.json")).json()
    assert {"/api/v2/providers", "/api/v2/providers/{offer_id}", "/api/v2/gpus"} <= set(document["paths"])
