"""The OpenAPI document as a contract: what Ninja derives from the routes and their schemas, plus
what a generated client and a person reading it need and nothing writes twice.

- ``operationId``: the view's name in camelCase (``list_offers`` -> ``listOffers``): stable and
  readable in every generated SDK;
- ``security`` and ``x-gpubroker-plan``: from the permission the route declares
  (``identity.access.Requires``), the same declaration the guard enforces;
- the errors a route can answer, each with the JSON error schema and an example: 401 and 403
  from its permission, 404 where it takes a path parameter, 422 where it takes input, 429 (with
  ``Retry-After`` and the rate-limit headers) where it is rate limited, 503 (with
  ``Retry-After``) everywhere a dependency can be away; the rate-limit and request-id headers on
  its successful answers;
- links from what a create answers to the matching delete and list, for stateful testing and
  for readers;
- a description for every tag.
"""

from __future__ import annotations

import re
from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

from gpubroker.gateway.identity.access import Access, Requires
from gpubroker.gateway.identity.plans import OWNED, Permission, cheapest_with

TAGS = [
    {"name": "offers", "description": "GPU offers from every provider, normalised to USD per hour for the instance."},
    {"name": "gpus", "description": "The GPU catalogue with datasheet figures."},
    {"name": "analytics", "description": "Price history and the market's per-GPU prices (Pro)."},
    {"name": "auth", "description": "Accounts, tokens and API keys."},
    {"name": "favorites", "description": "Offers a user keeps to find again."},
    {"name": "alerts", "description": "Price alerts on the list's filters (Pro)."},
    {"name": "webhooks", "description": "Signed deliveries of events to a user's own address (Enterprise)."},
    {"name": "integrations", "description": "A user's own provider credentials, kept in the vault (Enterprise)."},
    {
        "name": "rentals",
        "description": "Renting an offer on its provider's API, scaling and ending it, with its cost (Pro).",
    },
    {"name": "agents", "description": "Autonomous procurement within a budget, for service tokens (Pro)."},
    {"name": "admin", "description": "Plans and the audit log (Admin)."},
]
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /auth/login or /auth/register (15 minutes), or a service "
        "token from POST /auth/service-token (1 hour).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A key from POST /auth/api-keys (gpb_...).",
    },
}
RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests a second the caller's plan allows.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the current second.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Seconds until the window moves on.", "schema": {"type": "number"}},
}
REQUEST_ID = {"X-Request-ID": {"description": "Quote it in a report: it is in the logs.", "schema": {"type": "string"}}}
RETRY_AFTER = {
    "Retry-After": {"description": "Whole seconds to wait before trying again.", "schema": {"type": "integer"}}
}
ERRORS: dict[int, tuple[str, str, str | None, dict[str, Any]]] = {
    # status: (component name, description, example's field, extra headers)
    402: (
        "PaymentRequired",
        "Beyond your rental budget (nothing was asked of the provider), or the provider refused for the "
        "balance there (its reason quoted).",
        None,
        {},
    ),
    400: ("BadRequest", "Malformed: a body that is not JSON, a NUL in the path, over 200 parameters.", None, {}),
    401: ("Unauthorized", "Credentials are missing or not valid.", None, {}),
    403: ("Forbidden", "The caller's plan does not include this; the message names the plan needed.", None, {}),
    404: ("NotFound", "No such resource.", None, {}),
    409: ("Conflict", "The request conflicts with what exists (a duplicate, a limit reached).", None, {}),
    413: ("TooLarge", "The request body is larger than 256 KiB.", None, {}),
    414: ("UriTooLong", "The query string is longer than 8 KiB.", None, {}),
    422: ("Invalid", "An input is not valid; each problem names the field at fault.", "gpu", {}),
    429: ("TooManyRequests", "Over the plan's rate limit.", None, {**RETRY_AFTER, **RATE_HEADERS}),
    502: ("BadGateway", "The provider failed or refused the credentials (its reason quoted).", None, {}),
    503: ("Unavailable", "A dependency (database, vault) is away; nothing was changed.", None, RETRY_AFTER),
}
EXAMPLE_MESSAGES = {
    400: "Expecting value: line 1 column 2 (char 1)",
    401: "sign in (Bearer token) or use an API key",
    403: "this needs the pro plan or higher (you have free)",
    404: "not found",
    402: "vastai refused the rental (insufficient_balance): insufficient credit",
    409: "at most 20 webhooks",
    413: "the request body is larger than 256 KiB",
    414: "the query string is longer than 8 KiB",
    422: "unknown GPU 'Voodoo 5'; see GET /api/v2/gpus or use a name like 'H100' or 'RTX 4090'",
    429: "rate limit of 10 requests per second exceeded; retry after 0.40s",
    502: "lambdalabs refused the rental (auth): invalid API key",
    503: "the database is unavailable; nothing was changed, retry shortly",
}
PARAMETERS: dict[str, tuple[str | None, object]] = {
    # name: (description where the route's own declaration gives none, an example)
    "offer_id": ("An offer's id, as offers carry it.", "3c71f8f0-437b-56b5-94cc-4647b5fe106e"),
    "key_id": ("An API key's id, as listed.", 7),
    "alert_id": ("A price alert's id, as listed.", 12),
    "webhook_id": ("A webhook's id, as listed.", 3),
    "user_id": ("A user's id.", 42),
    "rental_id": ("A rental's id, as provisioning answered it.", "6f1d2c9e-8b7a-4e5f-9a0b-1c2d3e4f5a6b"),
    "action_id": ("An agent action's id, as asking for it answered.", "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"),
    "state": (None, "running"),
    "provider": ("A provider's name, as listed by the offers' providers.", "vastai"),
    "limit": (None, 20),
    "gpu": (None, "H100"),
    "vendor": (None, "nvidia"),
    "min_gpus": (None, 8),
    "max_gpus": (None, 8),
    "min_gpu_memory": (None, 80),
    "max_gpu_memory": (None, 96),
    "min_total_gpu_memory": (None, 640),
    "min_vcpus": (None, 32),
    "max_vcpus": (None, 128),
    "min_ram": (None, 256),
    "max_ram": (None, 2048),
    "min_storage": (None, 1000),
    "max_storage": (None, 20000),
    "min_price": (None, 1),
    "max_price": (None, 30),
    "max_price_per_gpu": (None, 2.5),
    "spot": (None, False),
    "resold": (None, False),
    "region": (None, "us-east-1"),
    "region_prefix": (None, "us-"),
    "continent": (None, "europe"),
    "availability": (None, "available"),
    "compliance": (None, "soc2"),
    "cpu_arch": (None, "x86_64"),
    "min_compute_capability": (None, 8.0),
    "interconnect": (None, "nvlink"),
    "max_age_s": (None, 600),
    "w_price": (None, 0.6),
    "w_performance": (None, 0.4),
    "w_memory": (None, 0),
    "w_availability": (None, 0),
    "sort": (None, "price_per_gpu"),
    "cursor": (None, "eyJvIjoiYTFiMiJ9.c2lnbmF0dXJl"),
    "last_event_id": (None, "o0.1042-o1.987-o2.1333"),
    "since": (None, "2026-11-26T00:00:00Z"),
    "until": (None, "2026-12-03T00:00:00Z"),
    "bucket": (None, "day"),
    "window": (None, "1m"),
}
"""Examples for every parameter, and the words of those whose route declares none."""
REQUEST_EXAMPLES: dict[str, object] = {
    # operationId: an example body (tests check each against its schema)
    "queryOffers": {"gpu": ["H100"], "min_gpus": 8, "max_price": 30, "sort": "price_per_gpu", "limit": 20},
    "bulkQueryOffers": {"queries": [{"gpu": ["H100"], "min_gpus": 8}, {"gpu": ["A100"], "max_price_per_gpu": 1.5}]},
    "decideOffer": {"gpu": ["H100"], "min_gpus": 8, "max_price": 30, "w_price": 0.7, "w_performance": 0.3},
    "register": {"email": "ada@example.com", "password": "correct horse battery staple"},
    "login": {"email": "ada@example.com", "password": "correct horse battery staple"},
    "refreshTokens": {"refresh_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
    "createApiKey": {"name": "training cluster"},
    "addFavorite": {"offer_id": "3c71f8f0-437b-56b5-94cc-4647b5fe106e"},
    "createAlert": {"filters": {"gpu": ["H100"], "min_gpus": 8}, "direction": "below", "price": 2.25, "per_gpu": True},
    "createWebhook": {"url": "https://hooks.example.com/gpubroker", "events": ["price.alert", "provider.health"]},
    "setIntegration": {"provider": "runpod", "credentials": {"api_key": "rp_0123456789abcdef"}},
    "setUserPlan": {"plan": "pro"},
    "provision": {"offer_id": "3c71f8f0-437b-56b5-94cc-4647b5fe106e", "ssh_public_key": "ssh-ed25519 AAAAC3Nza ada"},
    "scaleRental": {"gpu_count": 4},
    "setRentalBudget": {"budget_per_hour": 25, "budget_total": 1000},
    "registerAgent": {
        "name": "trainer",
        "budget_per_hour": 40,
        "budget_total": 500,
        "allowed_providers": ["lambdalabs", "runpod"],
        "allowed_gpu_types": ["H100"],
    },
    "requestAction": {"type": "decide", "params": {"gpu": ["H100"], "min_gpus": 8}},
}
HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    # operationId: a request header the view reads itself
    "provision": {
        "in": "header",
        "name": "Idempotency-Key",
        "required": False,
        "description": "Any 1-255 printable characters: a retry with the same key returns the same rental.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "example": "rent-2026-12-03-h100-a",
    },
}
LINKS = {
    # create operation -> (its id in the answer, parameter name, operations that take it)
    "createApiKey": ("id", "key_id", ["revokeApiKey"]),
    "createAlert": ("id", "alert_id", ["deleteAlert"]),
    "createWebhook": ("id", "webhook_id", ["deleteWebhook"]),
    "addFavorite": ("offer_id", "offer_id", ["removeFavorite"]),
    "setIntegration": ("provider", "provider", ["deleteIntegration"]),
    "provision": ("id", "rental_id", ["getRental", "scaleRental", "terminateRental"]),
    "requestAction": ("id", "action_id", ["getAction"]),
}


def document(api: NinjaAPI, path_prefix: str) -> dict[str, Any]:
    """The API's OpenAPI document, with everything above added."""
    schema = ContractSchema(api, path_prefix)
    _link(schema["paths"])
    _drop_unused_schemas(schema)
    return dict(schema)


def operation_id(name: str) -> str:
    """``list_offers`` -> ``listOffers``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class ContractSchema(OpenAPISchema):
    def __init__(self, api: NinjaAPI, path_prefix: str) -> None:
        super().__init__(api, path_prefix)
        self["tags"] = TAGS
        self["info"]["contact"] = {"name": "GPUBROKER maintainers"}
        self["info"]["license"] = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        self["servers"] = [{"url": "/", "description": "The gateway that serves this document."}]
        self["components"]["securitySchemes"] = SECURITY_SCHEMES
        self["components"]["responses"] = {
            name: _error_response(status, description, field, headers)
            for status, (name, description, field, headers) in ERRORS.items()
        }

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        operation.operation_id = operation.operation_id or operation_id(operation.view_func.__name__)
        details: dict[str, Any] = super().operation_details(operation)
        requires = next((check for check in operation.auth_callbacks if isinstance(check, Requires)), None)
        details["security"] = _security(requires)
        if requires is not None:
            details["x-gpubroker-access"] = _access(requires)
        details["responses"] = _responses(details["responses"], operation, requires)
        for parameter in details.get("parameters", []):
            description, example = PARAMETERS.get(parameter["name"], (None, None))
            if description and not (parameter.get("description") or parameter["schema"].get("description")):
                parameter["description"] = description
            if example is not None:
                parameter["example"] = [example] if _takes_many(parameter["schema"]) else example
        if details["operationId"] in HEADER_PARAMETERS:
            details.setdefault("parameters", []).append(HEADER_PARAMETERS[details["operationId"]])
        if "requestBody" in details and details["operationId"] in REQUEST_EXAMPLES:
            details["requestBody"]["content"]["application/json"]["example"] = REQUEST_EXAMPLES[details["operationId"]]
        return details

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        return None  # written by operation_details, from the declaration


def _security(requires: Requires | None) -> list[dict[str, list[str]]]:
    if requires is None or requires.need is Access.OPEN:
        return []
    schemes: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    if requires.need is Access.ANYONE or requires.need == Permission.READ_OFFERS:
        return [{}, *schemes]  # anonymous callers too
    if requires.need is Access.PLATFORM:
        return [{"bearer": []}]
    return schemes


def _takes_many(schema: dict[str, Any]) -> bool:
    """Whether a parameter is a list (``?gpu=H100&gpu=A100``), so its example is one too."""
    return schema.get("type") == "array" or any(option.get("type") == "array" for option in schema.get("anyOf", ()))


def _access(requires: Requires) -> dict[str, Any]:
    """What the route needs, in words a reader and a generator can use."""
    need = requires.need
    if isinstance(need, Permission):
        access: dict[str, Any] = {"permission": need.value, "minimumPlan": cheapest_with(need).value}
        if need in OWNED:
            access["userAccount"] = True  # a user's own token or key, not the operator's or a platform's
        if requires.parameters is not None:
            access["basicParameters"] = sorted(requires.parameters.basic)
            access["otherParametersNeed"] = cheapest_with(requires.parameters.need).value
        return access
    return {"access": need.value}


def _responses(declared: dict[Any, Any], operation: Operation, requires: Requires | None) -> dict[str, Any]:
    responses = {str(status): answer for status, answer in declared.items()}
    identified = requires is not None and requires.identifies
    for status, answer in responses.items():
        if status.startswith("2") and identified:
            answer["headers"] = {**RATE_HEADERS, **REQUEST_ID, **answer.get("headers", {})}
    wanted = {str(status) for status in declared} | {"400", "414"}  # the guard reads every request
    if operation.methods[0] in ("POST", "PUT", "PATCH", "DELETE"):
        wanted.add("413")
    if identified:
        wanted |= {"429", "503"}
        if requires is not None and requires.need is not Access.ANYONE:
            wanted |= {"401", "403"}
    if operation.models:  # parameters or a body to check
        wanted.add("422")
    if "{" in operation.path:
        wanted.add("404")
    for status in sorted(wanted):
        code = int(status)
        if code in ERRORS and (status not in responses or "content" not in responses[status] or code >= 400):
            responses[status] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    return dict(sorted(responses.items()))


def _error_response(status: int, description: str, field: str | None, headers: dict[str, Any]) -> dict[str, Any]:
    example = {"detail": [{"field": field, "message": EXAMPLE_MESSAGES[status]}], "request_id": "4f1c9e2a7b3d8e10"}
    return {
        "description": description,
        "headers": {**headers, **REQUEST_ID},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": example}},
    }


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """Ninja also lists the models it reads query parameters with, which nothing refers to (the
    parameters are listed one by one): a generator would make classes of them for nothing."""
    schemas = document["components"]["schemas"]
    used: set[str] = set()
    pending = _references({key: value for key, value in document.items() if key != "components"})
    pending |= _references(document["components"]["responses"])
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _references(schemas[name])
    document["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in used}


def _references(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def _link(paths: dict[str, Any]) -> None:
    """Links from each create's answer to the operations that take the id it returns."""
    by_id = {
        details["operationId"]: (path, method, details)
        for path, methods in paths.items()
        for method, details in methods.items()
    }
    for creator, (field, parameter, targets) in LINKS.items():
        if creator not in by_id:
            continue
        _, _, details = by_id[creator]
        for status, answer in details["responses"].items():
            if status.startswith("2") and "$ref" not in answer:
                answer["links"] = {
                    re.sub(r"^(.)", lambda m: m.group(1).upper(), target): {
                        "operationId": target,
                        "parameters": {parameter: f"$response.body#/{field}"},
                    }
                    for target in targets
                    if target in by_id
                }
