import pytest

from gpubroker.gateway.catalog.performance import performance_tflops
from gpubroker.gateway.catalog.rows import AVAILABILITY_SCORE
from tests.core.test_topsis import reference
from tests.gateway.conftest import GatewayClient as AsyncClient
from tests.gateway.conftest import offer

pytestmark = pytest.mark.django_db(transaction=True)

OFFERS = [
    offer("vastai", "h100-cheap", "H100 SXM", "1.90"),
    offer("runpod", "h100-dear", "H100 SXM", "2.99"),
    offer("runpod", "a100", "A100 SXM", "1.19"),
    offer("lambdalabs", "h100x8", "H100 SXM", "23.92", count=8),
    offer("replicate", "unpriced", "A100 SXM", None),
    offer("vastai", "mystery", "Voodoo 5", "0.10", gpu_type=""),
]


def only(criterion: str) -> dict[str, str]:
    return {
        f"w_{name}": "1" if name == criterion else "0" for name in ("price", "performance", "memory", "availability")
    }


async def test_ranks_by_the_given_weights(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(OFFERS)
    cheapest = (await client.get("/api/v2/providers/ranking", only("price"))).json()
    assert [item["offer"]["provider_offer_id"] for item in cheapest["items"]][:2] == ["a100", "h100-cheap"]
    fastest = (await client.get("/api/v2/providers/ranking", only("performance"))).json()
    assert fastest["items"][0]["offer"]["provider_offer_id"] == "h100x8"
    assert fastest["items"][0]["closeness"] == 1.0 and fastest["items"][0]["rank"] == 1


async def test_explains_the_ranking_and_matches_the_reference(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(OFFERS)
    body = (await client.get("/api/v2/providers/ranking")).json()
    assert body["ranked"] == 4
    assert body["excluded"] == {"quarantined": 0, "no_price": 1, "no_performance_figures": 1}
    criteria = body["criteria"]
    assert [c["name"] for c in criteria] == ["price", "performance", "memory", "availability"]
    assert abs(sum(c["weight"] for c in criteria) - 1) < 1e-9
    assert criteria[0]["benefit"] is False and criteria[0]["ideal"] < criteria[0]["anti_ideal"]
    ranked = [o for o in OFFERS if o.price_per_hour is not None and performance_tflops(o) is not None]
    rows = [
        [
            float(o.price_per_hour),
            performance_tflops(o),
            o.gpu_memory_gb * o.gpu_count,
            AVAILABILITY_SCORE[o.availability_status],
        ]  # type: ignore[arg-type, operator]
        for o in ranked
    ]
    expected = dict(
        zip((o.id for o in ranked), reference(rows, [0.4, 0.3, 0.2, 0.1], [False, True, True, True]), strict=True)
    )
    for item in body["items"]:
        assert item["closeness"] == pytest.approx(expected[item["offer"]["id"]], abs=1e-6)
    closeness = [item["closeness"] for item in body["items"]]
    assert closeness == sorted(closeness, reverse=True)


async def test_filters_apply_before_ranking(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(OFFERS)
    body = (await client.get("/api/v2/providers/ranking", {"provider": "runpod", "limit": "1"})).json()
    assert len(body["items"]) == 1 and body["ranked"] == 2


@pytest.mark.parametrize(
    "params, field",
    [({"w_price": "-1"}, "w_price"), ({"w_memory": "nan"}, "w_memory"),
     ({"w_price": "0", "w_performance": "0", "w_memory": "0", "w_availability": "0"}, "w_price"),
     ({"w_speed": "1"}, "w_speed"), ({"gpu": "Voodoo 5"}, "gpu"), ({"limit": "0"}, "limit")],
)  # fmt: skip
async def test_bad_ranking_input_is_a_422(client: AsyncClient, publish, params: dict[str, str], field: str) -> None:  # type: ignore[no-untyped-def]
    await publish(OFFERS)
    response = await client.get("/api/v2/providers/ranking", params)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] == field


async def test_a_quarantined_offer_is_shown_with_its_reason_but_never_ranked(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    reason = "$0.019/GPU-hour is below the plausible $0.1005-$167.5 for a H100; a per-GPU price ...?"
    held = offer("vastai", "h100-unit-slip", "H100 SXM", "0.019").model_copy(update={"quarantined": reason})
    await publish([*OFFERS, held])
    listed = (await client.get("/api/v2/providers", {"sort": "price"})).json()["items"]
    ids = [item["provider_offer_id"] for item in listed]
    assert ids[0] == "mystery" and ids.index("h100-unit-slip") > ids.index("h100x8")  # after every trusted price
    assert next(item for item in listed if item["provider_offer_id"] == "h100-unit-slip")["quarantined"] == reason
    assert all(item["quarantined"] is None for item in listed if item["provider_offer_id"] != "h100-unit-slip")
    ranking = (await client.get("/api/v2/providers/ranking", only("price"))).json()
    assert ranking["excluded"]["quarantined"] == 1
    assert "h100-unit-slip" not in [item["offer"]["provider_offer_id"] for item in ranking["items"]]
    cheapest = (await client.get("/api/v2/providers", {"sort": "topsis", **only("price")})).json()["items"]
    assert cheapest[0]["provider_offer_id"] == "a100"
    decision = (
        await client.post(
            "/api/v2/providers/decide", {"provider": ["vastai"], **only("price")}, content_type="application/json"
        )
    ).json()
    assert decision["choice"] is not None, decision
    assert decision["choice"]["offer"]["provider_offer_id"] == "h100-cheap" and decision["excluded"]["quarantined"] == 1
