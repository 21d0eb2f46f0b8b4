"""Favourites, alerts, webhooks and integrations, and that no secret ever leaks."""

from __future__ import annotations

import logging

import orjson
import pytest

from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.realtime.deliveries import signature
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import AsgiClient, asgi_client, offer
from tests.gateway.test_identity import PASSWORD, make_user, with_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(runtime: GatewayRuntime) -> AsgiClient:
    return asgi_client(runtime)


async def test_favorites(client: AsgiClient, publish) -> None:  # type: ignore[no-untyped-def]
    item = offer("vastai", "1", "H100", "2.0")
    await publish([item])
    _, key = await make_user(Plan.FREE)
    path = "/api/v2/users/favorites"
    assert (await client.request("POST", path, json={"offer_id": item.id}, headers=with_key(key)))[0] == 201
    assert (await client.request("POST", path, json={"offer_id": item.id}, headers=with_key(key)))[0] == 409
    assert (await client.request("POST", path, json={"offer_id": "nope"}, headers=with_key(key)))[0] == 404
    status, _, body = await client.get(path, headers=with_key(key))
    assert status == 200
    assert [f["offer_id"] for f in orjson.loads(body)] == [item.id] and orjson.loads(body)[0]["available"]
    assert (await client.request("DELETE", f"{path}/{item.id}", headers=with_key(key)))[0] == 204
    assert orjson.loads((await client.get(path, headers=with_key(key)))[2]) == []


async def test_alerts_validate_their_filters(client: AsgiClient) -> None:
    _, key = await make_user(Plan.PRO)
    rule = {"filters": {"gpu": ["H100"], "min_gpus": 8}, "direction": "below", "price": 20}
    status, _, body = await client.request("POST", "/api/v2/alerts", json=rule, headers=with_key(key))
    assert status == 201 and orjson.loads(body)["filters"] == {"gpu": ["H100"], "min_gpus": 8}
    bad = {"filters": {"gpu": ["Voodoo"]}, "price": 1}
    status, _, body = await client.request("POST", "/api/v2/alerts", json=bad, headers=with_key(key))
    assert status == 422 and orjson.loads(body)["detail"][0]["field"] == "gpu"
    status, _, body = await client.request("POST", "/api/v2/alerts", json={"price": -1}, headers=with_key(key))
    assert status == 422 and orjson.loads(body)["detail"][0]["field"] == "price"
    [alert] = orjson.loads((await client.get("/api/v2/alerts", headers=with_key(key)))[2])
    assert (await client.request("DELETE", f"/api/v2/alerts/{alert['id']}", headers=with_key(key)))[0] == 204


async def test_webhooks_show_their_secret_once_and_refuse_private_targets(
    client: AsgiClient, runtime: GatewayRuntime
) -> None:
    _, key = await make_user(Plan.ENTERPRISE)
    hook = {"url": "https://hooks.example.com/gpu", "events": ["price.alert", "provider.health"]}
    status, _, body = await client.request("POST", "/api/v2/webhooks", json=hook, headers=with_key(key))
    created = orjson.loads(body)
    assert status == 201 and created["secret"].startswith("whsec_")
    listed = (await client.get("/api/v2/webhooks", headers=with_key(key)))[2]
    assert created["secret"] not in listed.decode()
    assert (await runtime.vault.read(f"gpubroker/webhooks/{created['id']}")) == {"secret": created["secret"]}
    expected = signature(created["secret"], 1700000000, b'{"a":1}')
    assert expected.startswith("t=1700000000,v1=") and len(expected.split("v1=")[1]) == 64
    for url in ("http://127.0.0.1/x", "https://10.0.0.1/x", "ftp://example.com/x"):
        status, _, body = await client.request("POST", "/api/v2/webhooks", json={"url": url}, headers=with_key(key))
        assert status == 422 and orjson.loads(body)["detail"][0]["field"] == "url"


async def test_secrets_never_appear_in_logs_or_answers(
    client: AsgiClient, runtime: GatewayRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider_key = "vast-SECRET-0123456789abcdef"
    user, key = await make_user(Plan.ENTERPRISE, email="grace@example.com")
    login = {"email": "grace@example.com", "password": PASSWORD}
    answers = [await client.request("POST", "/api/v2/auth/login", json=login)]
    tokens = orjson.loads(answers[0][2])
    integration = {"provider": "vastai", "credentials": {"api_key": provider_key}}
    path = "/api/v2/providers/config/integrations"
    answers.append(await client.request("POST", path, json=integration, headers=with_key(key)))
    answers.append(await client.get(path, headers=with_key(key)))
    answers.append(
        await client.request(
            "POST", path, json={"provider": "vastai", "credentials": {"pwd": "x"}}, headers=with_key(key)
        )
    )
    answers.append(await client.request("POST", "/api/v2/auth/login", json={**login, "password": "wrong password!"}))
    answers.append(await client.get("/api/v2/gpus", headers=with_key(key + "x")))
    assert answers[1][0] == 201 and answers[3][0] == 422
    assert await runtime.vault.read(f"gpubroker/users/{user.pk}/providers/vastai") == {"api_key": provider_key}

    private_pem = runtime.keys._current.private_pem.decode()  # type: ignore[union-attr]
    secrets = [
        provider_key,
        PASSWORD,
        key,
        tokens["refresh_token"],
        tokens["access_token"],
        private_pem.splitlines()[1],
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    answered = "\n".join(body.decode() for _, _, body in answers[1:])
    for secret in secrets:
        assert secret not in logged and secret not in answered
