"""The OpenAPI document is a contract a generator and a person get right the first time: readable
operationIds, every operation and parameter described with an example, security and plans
derived from the routes' own declarations, every error declared; the committed copy is what the
code generates; the docs page works offline; errors anywhere under the API are JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from gpubroker.gateway import docs
from gpubroker.gateway.identity.access import Access, Requires
from gpubroker.gateway.identity.plans import Permission, cheapest_with
from gpubroker.gateway.openapi import PARAMETERS, operation_id
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import asgi_client

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "openapi"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return orjson.loads(docs.openapi_document())  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def resolved(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref`` followed, when it is one."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A validator of ``schema`` that resolves the document's ``#/components/...`` references."""
    registry_schema = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(registry_schema)


def test_operation_ids_are_readable_camel_case_and_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) for i in ids), ids
    assert {"listOffers", "rankOffers", "createWebhook", "listGpus", "createApiKey"} <= set(ids)
    assert operation_id("list_offers") == "listOffers"


def test_every_operation_is_tagged_summarised_and_described(document: dict[str, Any]) -> None:
    described = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert all(described.values())
    for path, method, op in operations(document):
        assert op.get("summary") and op.get("description"), (method, path)
        assert op.get("tags") and set(op["tags"]) <= described.keys(), (method, path, op.get("tags"))
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    assert used == described.keys(), "every described tag is used, and only those"


def test_every_parameter_is_described_with_an_example_that_fits_its_schema(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        for parameter in op.get("parameters", []):
            where = (method, path, parameter["name"])
            assert parameter.get("description") or parameter["schema"].get("description"), where
            assert "example" in parameter, where
            errors = list(validator(document, parameter["schema"]).iter_errors(parameter["example"]))
            assert not errors, (where, errors[0].message)
    assert set(PARAMETERS) <= {p["name"] for _, _, op in operations(document) for p in op.get("parameters", [])}, (
        "no example for a parameter that no longer exists"
    )


def test_every_request_body_has_an_example_that_fits_its_schema(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        if "requestBody" in op:
            content = op["requestBody"]["content"]["application/json"]
            assert "example" in content, (method, path)
            errors = list(validator(document, content["schema"]).iter_errors(content["example"]))
            assert not errors, (method, path, errors[0].message)


def test_every_error_is_declared_with_the_json_error_schema_and_an_example(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        responses = op["responses"]
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                answer = resolved(document, answer)
                content = answer["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                assert not list(validator(document, content["schema"]).iter_errors(content["example"]))
        if "{" in path:
            assert "404" in responses, (method, path)
        if op.get("parameters") or "requestBody" in op:
            assert "422" in responses, (method, path)
    too_many = document["components"]["responses"]["TooManyRequests"]["headers"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= too_many.keys()


async def test_security_and_plans_come_from_each_routes_declaration(
    document: dict[str, Any], runtime: GatewayRuntime
) -> None:
    assert document["components"]["securitySchemes"].keys() == {"bearer", "apiKey"}
    for path, method, op in operations(document):
        concrete = re.sub(r"\{(\w+)\}", lambda m: str(PARAMETERS[m.group(1)][1]), path)
        requires = runtime.guard.routes.lookup(method.upper(), concrete)
        assert isinstance(requires, Requires), (method, path)
        anonymous_allowed = {} in op["security"]
        assert anonymous_allowed == (requires.need in (Access.ANYONE, Permission.READ_OFFERS)), (method, path)
        if isinstance(requires.need, Permission):
            plan = cheapest_with(requires.need).value
            assert op["x-gpubroker-access"]["minimumPlan"] == plan, (method, path)
            assert op["x-gpubroker-access"]["permission"] == requires.need.value
            assert "403" in op["responses"] and "401" in op["responses"], (method, path)
        assert "429" in op["responses"], (method, path)
    ranking = document["paths"]["/api/v2/providers/ranking"]["get"]
    assert ranking["x-gpubroker-access"]["minimumPlan"] == "pro"


def test_create_operations_link_to_their_delete(document: dict[str, Any]) -> None:
    by_id = {op["operationId"]: op for _, _, op in operations(document)}
    for creator, target in [
        ("createApiKey", "revokeApiKey"),
        ("createAlert", "deleteAlert"),
        ("createWebhook", "deleteWebhook"),
        ("addFavorite", "removeFavorite"),
    ]:
        success = next(answer for status, answer in by_id[creator]["responses"].items() if status.startswith("2"))
        targets = {link["operationId"] for link in success["links"].values()}
        assert target in targets, creator


def test_the_committed_documents_are_what_the_code_generates(document: dict[str, Any]) -> None:
    """After changing the API, run scripts/api-documents and commit docs/openapi/."""
    committed = orjson.loads((COMMITTED / "openapi.json").read_bytes())
    assert committed == document, "docs/openapi/openapi.json is out of date: run scripts/api-documents"
    streams = orjson.loads(docs.asyncapi_document())
    committed = orjson.loads((COMMITTED / "asyncapi.json").read_bytes())
    assert committed == streams, "docs/openapi/asyncapi.json is out of date: run scripts/api-documents"


async def test_the_docs_page_and_its_assets_are_served_from_the_gateway(runtime: GatewayRuntime) -> None:
    call = asgi_client(runtime)
    status, _, page = await call.get("/api/v2/docs")
    assert status == 200 and b"/api/v2/docs/swagger-ui-bundle.js" in page
    assert b"//" not in page, "no asset from another site"
    for asset in re.findall(rb'(?:src|href)="(/api/v2/docs/[^"]+)"', page):
        status, _, body = await call.get(asset.decode())
        assert status == 200 and body, asset
    status, _, body = await call.get("/api/v2/asyncapi.json")
    assert status == 200 and orjson.loads(body)["asyncapi"].startswith("3.")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v2/no-such-thing", 404),
        ("GET", "/api/v2/docs/no-such-asset.js", 404),
        ("DELETE", "/api/v2/gpus", 405),
        ("PATCH", "/api/v2/providers", 405),
    ],
)
async def test_errors_under_the_api_are_json_with_a_request_id(
    runtime: GatewayRuntime, method: str, path: str, status: int
) -> None:
    answer_status, headers, body = await asgi_client(runtime).request(method, path)
    assert answer_status == status
    assert headers[b"content-type"].startswith(b"application/json")
    error = orjson.loads(body)
    assert error["detail"][0]["message"] and error["request_id"] == headers[b"x-request-id"].decode()
