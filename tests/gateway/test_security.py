"""Access fails closed and every input hole answers a clear 4xx, through the whole ASGI application.

Each test pins one finding of an attack on the gateway as an outsider would make it: the route's
permission is part of the route and no spelling of a request goes around it; tokens and keys are
checked against the account on use; abuse is limited; bad input never reaches the database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from django.test import AsyncClient as DjangoClient

from gpubroker.core.errors import VaultUnavailable
from gpubroker.gateway import app as app_module
from gpubroker.gateway.identity import accounts, guard
from gpubroker.gateway.identity.access import Requires
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.identity.routes import WEBSOCKET
from gpubroker.gateway.models import ApiKey, AuditEvent, Favorite, Integration, User, Webhook
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import AsgiClient, asgi_client, offer
from tests.gateway.test_identity import PASSWORD, bearer, make_user, with_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(runtime: GatewayRuntime) -> AsgiClient:
    return asgi_client(runtime)


def full_width(text: str) -> str:
    """``text`` in full-width letters (U+FF21...), which look like the ASCII ones."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


def detail(body: bytes) -> str:
    return str(orjson.loads(body)["detail"][0]["message"])


# --- the route declares its permission; the guard fails closed ------------------------------


def test_every_route_and_method_declares_what_it_needs(runtime: GatewayRuntime) -> None:
    routes = runtime.guard.routes.routes
    patterns = {route.pattern for route in routes}
    assert {"api/v2/providers", "api/v2/admin/users/<user_id>/plan", "health", "ws/providers"} <= patterns
    assert any(WEBSOCKET in route.needs for route in routes)
    undeclared = [route.pattern for route in routes if not route.needs or None in route.needs.values()]
    assert undeclared == [], "every route and method states what it needs"
    for route in routes:
        for method, requires in route.needs.items():
            assert isinstance(requires, Requires) and method == method.upper(), (route.pattern, method)


@pytest.mark.parametrize("spelling", ["put", "Put", "pUT"])
async def test_a_lowercase_method_meets_the_same_permission(client: AsgiClient, spelling: str) -> None:
    victim, _ = await make_user(Plan.FREE)
    status, _, body = await client.request(spelling, f"/api/v2/admin/users/{victim.pk}/plan", json={"plan": "admin"})
    assert status == 401, body
    _, free_key = await make_user(Plan.FREE)
    status, _, _ = await client.request(
        spelling, f"/api/v2/admin/users/{victim.pk}/plan", json={"plan": "admin"}, headers=with_key(free_key)
    )
    assert status == 403
    assert (await User.objects.aget(pk=victim.pk)).plan == "free"


@pytest.mark.parametrize("method", ["get", "Get", "gEt"])
async def test_every_spelling_of_a_read_needs_the_plan(client: AsgiClient, method: str) -> None:
    assert (await client.request(method, "/api/v2/admin/audit"))[0] == 401
    assert (await client.request(method, "/api/v2/providers/ranking"))[0] == 401
    _, free_key = await make_user(Plan.FREE)
    status, _, body = await client.request(method, "/api/v2/providers/ranking", headers=with_key(free_key))
    assert status == 403 and "pro plan" in detail(body)


async def test_a_free_key_cannot_make_a_webhook_in_any_spelling(client: AsgiClient) -> None:
    _, free_key = await make_user(Plan.FREE)
    for method in ("post", "Post", "POST"):
        hook = {"url": "https://hooks.example.com/x"}
        status, _, _ = await client.request(method, "/api/v2/webhooks", json=hook, headers=with_key(free_key))
        assert status == 403
    assert await Webhook.objects.acount() == 0


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "patch", "CONNECT"])
async def test_a_method_a_route_does_not_declare_is_405(client: AsgiClient, method: str) -> None:
    status, headers, body = await client.request(method, "/api/v2/alerts")
    assert status == 405 and headers[b"allow"] == b"GET, POST"
    assert orjson.loads(body)["request_id"]


async def test_unknown_paths_never_reach_django(client: AsgiClient) -> None:
    for path in ("/api/v2/nope", "/api/v2/", "/api/v2/providers/", "/admin", "/internal/v1/nope"):
        status, headers, _ = await client.request("GET", path)
        assert status == 404 and headers[b"content-type"] == b"application/json", path


async def test_nothing_passes_before_the_runtime_starts() -> None:
    application = app_module.GatewayApplication()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/v2/admin/audit", "headers": [], "query_string": b""}
    await application(scope, asyncio.Event().wait, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 503


async def test_views_check_the_caller_themselves_and_write_nothing_first(runtime: GatewayRuntime) -> None:
    """A request that reaches Django without the guard (here Django's own test client) is nobody."""
    direct = DjangoClient()
    user, _ = await make_user(Plan.ENTERPRISE)
    attempts = [
        ("post", "/api/v2/webhooks", {"url": "https://hooks.example.com/x"}),
        ("post", "/api/v2/providers/config/integrations", {"provider": "vastai", "credentials": {"api_key": "k"}}),
        ("put", f"/api/v2/admin/users/{user.pk}/plan", {"plan": "admin"}),
        ("post", "/api/v2/auth/api-keys", {"name": "sneaky"}),
        ("get", "/api/v2/admin/audit", None),
    ]
    keys_before = await ApiKey.objects.acount()
    for method, path, body in attempts:
        response = await getattr(direct, method)(path, body, content_type="application/json")
        assert response.status_code == 401, (method, path, response.content)
    assert await Webhook.objects.acount() == 0 and await Integration.objects.acount() == 0
    assert await ApiKey.objects.acount() == keys_before
    assert (await User.objects.aget(pk=user.pk)).plan == "enterprise"


# --- /internal is for the platform's own services -------------------------------------------


async def test_internal_routes_take_a_platform_service_token_only(client: AsgiClient, runtime: GatewayRuntime) -> None:
    user, key = await make_user(Plan.ADMIN)
    access, _ = runtime.tokens.issue(f"user:{user.pk}", "admin", "access")
    agent, _ = runtime.tokens.issue(f"user:{user.pk}", "admin", "service", key_id=1)
    platform, _ = runtime.tokens.issue("service:airflow", "admin", "service")
    body = {"token": access}
    path = "/internal/v1/auth/validate-token"
    assert (await client.request("POST", path, json=body))[0] == 401
    assert (await client.request("POST", path, json=body, headers=with_key(key)))[0] == 403
    assert (await client.request("POST", path, json=body, headers=bearer(access)))[0] == 403
    assert (await client.request("POST", path, json=body, headers=bearer(agent)))[0] in (401, 403)
    operator = [(b"x-api-key", b"operator-test-key")]
    assert (await client.request("POST", path, json=body, headers=operator))[0] == 403, "not even the operator"
    status, _, answer = await client.request("POST", path, json=body, headers=bearer(platform))
    verdict = orjson.loads(answer)
    assert status == 200 and verdict["valid"] and verdict["plan"] == "admin" and verdict["user_id"] == user.pk


# --- tokens are checked against the account on use ------------------------------------------


async def test_a_service_token_ends_with_its_api_key(client: AsgiClient) -> None:
    _, key = await make_user(Plan.PRO)
    status, _, body = await client.request("POST", "/api/v2/auth/service-token", headers=with_key(key))
    token = orjson.loads(body)["access_token"]
    assert status == 200 and (await client.get("/api/v2/providers/ranking", headers=bearer(token)))[0] == 200
    [listed] = orjson.loads((await client.get("/api/v2/auth/api-keys", headers=with_key(key)))[2])
    assert (await client.request("DELETE", f"/api/v2/auth/api-keys/{listed['id']}", headers=bearer(token)))[0] == 204
    status, _, body = await client.get("/api/v2/providers/ranking", headers=bearer(token))
    assert status == 401 and "revoked" in detail(body)


async def test_a_changed_plan_reaches_existing_tokens_within_the_bound(
    client: AsgiClient, runtime: GatewayRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "REMEMBER_S", 0.2)
    user, key = await make_user(Plan.PRO)
    token = orjson.loads((await client.request("POST", "/api/v2/auth/service-token", headers=with_key(key)))[2])
    access, _ = runtime.tokens.issue(f"user:{user.pk}", "pro", "access")
    for credentials in (bearer(token["access_token"]), bearer(access)):
        assert (await client.get("/api/v2/providers/ranking", headers=credentials))[0] == 200
    await User.objects.filter(pk=user.pk).aupdate(plan="free")  # as another instance or the CLI would
    await asyncio.sleep(0.25)
    for credentials in (bearer(token["access_token"]), bearer(access)):
        status, _, body = await client.get("/api/v2/providers/ranking", headers=credentials)
        assert status == 403 and "you have free" in detail(body)


async def test_a_plan_the_admin_api_changes_applies_at_once_to_the_users_keys(client: AsgiClient) -> None:
    user, key = await make_user(Plan.FREE)
    assert (await client.get("/api/v2/providers/ranking", headers=with_key(key)))[0] == 403  # now remembered
    moved = await client.request("PUT", f"/api/v2/admin/users/{user.pk}/plan", json={"plan": "pro"}, headers=OPERATOR)
    assert moved[0] == 200
    assert (await client.get("/api/v2/providers/ranking", headers=with_key(key)))[0] == 200


async def test_tokens_of_a_deleted_user_read_and_write_nothing(
    client: AsgiClient, runtime: GatewayRuntime, publish, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(accounts, "REMEMBER_S", 0.2)
    await publish([offer("vastai", "1", "H100", "2.0")])
    user, _ = await make_user(Plan.PRO)
    access, _ = runtime.tokens.issue(f"user:{user.pk}", "pro", "access")
    assert (await client.get("/api/v2/users/favorites", headers=bearer(access)))[0] == 200
    await user.adelete()
    await asyncio.sleep(0.25)
    assert (await client.get("/api/v2/users/favorites", headers=bearer(access)))[0] == 401
    favorite = {"offer_id": next(iter(runtime.catalog.offers))}
    status, _, _ = await client.request("POST", "/api/v2/users/favorites", json=favorite, headers=bearer(access))
    assert status == 401 and await Favorite.objects.acount() == 0


# --- abuse and limits -----------------------------------------------------------------------


async def test_the_rate_limit_counts_the_account_not_the_key(runtime: GatewayRuntime) -> None:
    _, first = await make_user(Plan.FREE)
    client = asgi_client(runtime)
    made = await client.request("POST", "/api/v2/auth/api-keys", json={"name": "b"}, headers=with_key(first))
    second = orjson.loads(made[2])["key"]
    statuses = [(await client.get("/api/v2/gpus", headers=with_key(k)))[0] for _ in range(8) for k in (first, second)]
    assert statuses.count(200) <= 11 and statuses.count(429) >= 5  # ten a second for the account


async def test_keys_per_account_are_capped_by_plan(client: AsgiClient) -> None:
    _, key = await make_user(Plan.FREE)  # holds one already
    made = [
        (await client.request("POST", "/api/v2/auth/api-keys", json={"name": f"k{n}"}, headers=with_key(key)))[0]
        for n in range(5)
    ]
    assert made == [201, 201, 201, 201, 409]


async def test_failed_authentication_is_limited_before_any_lookup(
    runtime: GatewayRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = []
    real = accounts._key_owner

    def counted(**match: object) -> object:
        lookups.append(match)
        return real(**match)

    monkeypatch.setattr(accounts, "_key_owner", counted)
    client = asgi_client(runtime, client="198.51.100.66")
    statuses = [(await client.get("/api/v2/gpus", headers=with_key(f"gpb_bogus{n}")))[0] for n in range(40)]
    assert statuses[: guard.FAILED_AUTH_LIMIT] == [401] * guard.FAILED_AUTH_LIMIT
    assert set(statuses[guard.FAILED_AUTH_LIMIT :]) == {429}
    assert len(lookups) <= guard.FAILED_AUTH_LIMIT + 1, "refused addresses cause no database lookups"
    tokens = [(await client.get("/api/v2/gpus", headers=bearer("forged.token.x")))[0] for _ in range(3)]
    assert tokens == [429] * 3
    elsewhere = asgi_client(runtime, client="198.51.100.67")
    assert (await elsewhere.get("/api/v2/gpus"))[0] == 200


async def test_login_is_throttled_per_account(runtime: GatewayRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Mid-minute on the limiter's clock: across a minute's edge its sliding estimate may let one
    # more through, which a slow run would otherwise hit now and then.
    monkeypatch.setattr(runtime.limiter, "_clock", lambda: 1_796_000_010.0)
    await make_user(Plan.FREE, email="target@example.com")
    statuses = []
    for n in range(7):  # each from another address: the throttle follows the account
        client = asgi_client(runtime, client=f"203.0.113.{n}")
        wrong = {"email": "target@example.com", "password": "not the password!"}
        statuses.append((await client.request("POST", "/api/v2/auth/login", json=wrong))[0])
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    right = {"email": "target@example.com", "password": PASSWORD}
    elsewhere = asgi_client(runtime, client="203.0.113.99")
    assert (await elsewhere.request("POST", "/api/v2/auth/login", json=right))[0] == 429
    assert await AuditEvent.objects.filter(outcome="throttled").acount() >= 2


async def test_unknown_methods_make_no_metric_series(client: AsgiClient) -> None:
    for n in range(20):
        await client.request(f"M{n}X", "/api/v2/gpus")
    metrics = (await client.get("/metrics"))[2].decode()
    assert "M0X" not in metrics and "M19X" not in metrics


# --- WebSocket caps and close codes ---------------------------------------------------------


async def test_a_connection_holds_at_most_its_channel_cap_and_small_messages(runtime: GatewayRuntime) -> None:
    from tests.gateway.test_sockets import Socket

    async with Socket(runtime) as socket:
        await socket.connected()
        first = [f"region:r{n}" for n in range(60)]
        second = [f"region:s{n}" for n in range(60)]
        assert (await socket.say({"type": "subscribe", "channels": first}))["type"] == "subscribed"
        refused = await socket.say({"type": "subscribe", "channels": second})
        assert refused["type"] == "error" and "at most 100" in refused["message"]
        await socket.incoming.put({"type": "websocket.receive", "text": "x" * (64 * 1024)})
        closed = await socket.message()
        assert closed["type"] == "websocket.close" and closed["code"] == 1009


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        b"until=0001-01-01T00:00:00%2B23:59",
        b"until=9999-12-31T23:59:59Z",
        b"since=0001-01-01T00:00:00-23:59",
        b"since=2026-01-01T00:00:00%2B23:59&until=2026-01-02T00:00:00-23:59",
    ],
)
async def test_odd_history_dates_are_a_422(client: AsgiClient, query: bytes) -> None:
    status, _, body = await client.get("/api/v2/analytics/price-history", query=query, headers=OPERATOR)
    assert status == 422, body


async def test_a_history_range_wholly_past_retention_says_so(client: AsgiClient) -> None:
    query = b"since=2020-01-01T00:00:00Z&until=2020-02-01T00:00:00Z"
    status, _, body = await client.get("/api/v2/analytics/price-history", query=query, headers=OPERATOR)
    assert status == 422 and "kept 30 days" in detail(body)


async def test_a_nul_in_a_path_id_is_a_400(client: AsgiClient) -> None:
    _, key = await make_user(Plan.FREE)
    status, headers, _ = await client.request("DELETE", "/api/v2/users/favorites/a\x00b", headers=with_key(key))
    assert status == 400 and headers[b"content-type"] == b"application/json"


async def test_bulk_query_reports_a_type_error_per_query(client: AsgiClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([offer("vastai", "1", "H100", "2.0")])
    body = {"queries": [{"gpu": ["H100"]}, {"min_gpus": "eight"}, {"limit": 1}]}
    status, _, answer = await client.request("POST", "/api/v2/providers/bulk/query", json=body, headers=OPERATOR)
    results = orjson.loads(answer)["results"]
    assert status == 200 and results[0]["total"] == 1 and results[2]["count"] == 1
    assert results[1]["status"] == 422 and results[1]["detail"][0]["field"] == "queries.1.min_gpus"


async def test_extreme_weights_are_refused(client: AsgiClient) -> None:
    status, _, body = await client.get("/api/v2/providers", query=b"sort=topsis&w_price=1e308", headers=OPERATOR)
    assert status == 422 and "w_price" in body.decode()


async def test_one_offer_refuses_unknown_parameters_and_lists_cap_their_values(client: AsgiClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([offer("vastai", "1", "H100", "2.0")])
    offer_id = next(iter(client.app.runtime.catalog.offers))
    status, _, body = await client.get(f"/api/v2/providers/{offer_id}", query=b"debug=1")
    assert status == 422 and "debug" in body.decode()
    many = b"&".join(b"region=r%d" % n for n in range(60))
    assert (await client.get("/api/v2/providers", query=many))[0] == 422
    long = b"gpu=" + b"H" * 300
    assert (await client.get("/api/v2/providers", query=long))[0] == 422


async def test_oversized_and_over_many_inputs_are_json_errors(client: AsgiClient) -> None:
    huge = {"gpu": ["H100"] * 40_000}
    status, headers, body = await client.request("POST", "/api/v2/providers/query", json=huge, headers=OPERATOR)
    assert status == 413 and headers[b"content-type"] == b"application/json" and "KiB" in detail(body)
    fields = b"&".join(b"x%d=1" % n for n in range(300))
    status, headers, _ = await client.get("/api/v2/providers", query=fields)
    assert status == 400 and headers[b"content-type"] == b"application/json"
    status, _, _ = await client.get("/api/v2/providers", query=b"gpu=" + b"A" * 9000)
    assert status == 414


async def test_the_docs_page_works_offline(client: AsgiClient) -> None:
    status, headers, page = await client.get("/api/v2/docs")
    assert status == 200 and b"swagger-ui" in page and b"https://" not in page
    assert b"'self'" in headers[b"content-security-policy"]
    for asset in (b"swagger-ui-bundle.js", b"swagger-ui.css", b"starter.js"):
        assert (await client.get("/api/v2/docs/" + asset.decode()))[0] == 200
    assert (await client.get("/api/v2/docs/../../etc/passwd"))[0] == 404


# --- stored both or neither -----------------------------------------------------------------


class AwayVault:
    """A vault that cannot be reached, as an outage looks to the gateway."""

    async def read(self, *path_and_values: object) -> None:
        raise VaultUnavailable("the vault did not answer: ConnectionError")

    write = delete = read  # type: ignore[assignment]


async def test_a_vault_outage_stores_nothing_and_is_a_503(client: AsgiClient, runtime: GatewayRuntime) -> None:
    _, key = await make_user(Plan.ENTERPRISE)
    integrations = "/api/v2/providers/config/integrations"
    integration = {"provider": "vastai", "credentials": {"api_key": "k-123"}}
    assert (await client.request("POST", integrations, json=integration, headers=with_key(key)))[0] == 201
    made = await client.request(
        "POST", "/api/v2/webhooks", json={"url": "https://hooks.example.com/a"}, headers=with_key(key)
    )
    hook = orjson.loads(made[2])
    runtime.vault = AwayVault()  # type: ignore[assignment]
    other = {**integration, "provider": "runpod"}
    status, headers, _ = await client.request("POST", integrations, json=other, headers=with_key(key))
    assert status == 503 and int(headers[b"retry-after"]) >= 1
    assert await Integration.objects.filter(provider="runpod").acount() == 0
    for path in (f"{integrations}/vastai", f"/api/v2/webhooks/{hook['id']}"):
        status, headers, _ = await client.request("DELETE", path, headers=with_key(key))
        assert status == 503 and headers[b"retry-after"]
    assert await Integration.objects.acount() == 1 and await Webhook.objects.acount() == 1
    another = {"url": "https://hooks.example.com/b"}
    assert (await client.request("POST", "/api/v2/webhooks", json=another, headers=with_key(key)))[0] == 503
    assert await Webhook.objects.acount() == 1


async def test_webhook_targets_are_checked_and_urls_never_logged_with_credentials(client: AsgiClient) -> None:
    _, key = await make_user(Plan.ENTERPRISE)
    for url in (
        "http://0x7f.1/x",
        "http://2130706433/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
        "http://169.254.169.254/latest",
        "http://metadata.google.internal/x",
        "https://rebound.example.com/x",  # a name that resolves to loopback
        "https://user:hunter2@hooks.example.com/x",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/x\r\nX-Evil: 1",
    ):
        status, _, body = await client.request("POST", "/api/v2/webhooks", json={"url": url}, headers=with_key(key))
        assert status == 422 and orjson.loads(body)["detail"][0]["field"] == "url", url
    assert await Webhook.objects.acount() == 0
    assert not [e async for e in AuditEvent.objects.filter(target__contains="hunter2")]


async def test_look_alike_emails_are_one_account(client: AsgiClient) -> None:
    first = {"email": "ada@example.com", "password": PASSWORD}
    assert (await client.request("POST", "/api/v2/auth/register", json=first))[0] == 201
    for look_alike in (full_width("ADA") + "@example.com", "Ada@EXAMPLE.com", full_width("ada") + "@example.com"):
        status, _, body = await client.request("POST", "/api/v2/auth/register", json={**first, "email": look_alike})
        assert status == 409, (look_alike, body)
    assert await User.objects.acount() == 1


OPERATOR = [(b"x-api-key", b"operator-test-key")]
