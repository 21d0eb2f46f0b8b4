"""The API's own description: ``/api/v2/openapi.json``, ``/api/v2/asyncapi.json`` (the streams)
and the browsable page ``/api/v2/docs``.

The page is Swagger UI, served from this gateway with no network: its script and stylesheet come
from the ``swagger-ui-py`` package (Swagger UI 5, Apache-2.0), read once from the installed
package. The page and its starter script are ours, so no inline script is needed and the page
keeps a strict Content-Security-Policy (``default-src 'self'``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import orjson
from django.http import HttpRequest, HttpResponse

from gpubroker.gateway import errors
from gpubroker.gateway.identity.access import Access, allow

ASSET_PACKAGE = "swagger_ui"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
STARTER = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v2/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
"""
PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GPUBROKER API</title>
  <link rel="icon" type="image/png" href="/api/v2/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/api/v2/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/v2/docs/swagger-ui-bundle.js"></script>
  <script src="/api/v2/docs/starter.js"></script>
</body>
</html>
"""
ONE_DAY_S = 86_400


@cache
def openapi_document() -> bytes:
    """The document, generated once per process (it changes only with a release)."""
    from gpubroker.gateway.api import api
    from gpubroker.gateway.openapi import document

    return orjson.dumps(document(api, "/api/v2/"), option=orjson.OPT_NON_STR_KEYS)


@cache
def asyncapi_document() -> bytes:
    """The streams' document, generated once per process."""
    from gpubroker.gateway.api import api
    from gpubroker.gateway.asyncapi import document

    return orjson.dumps(document(api.version))


@allow(Access.ANYONE, "GET")
async def openapi_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(openapi_document(), content_type="application/json")


@allow(Access.ANYONE, "GET")
async def asyncapi_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(asyncapi_document(), content_type="application/json")


@allow(Access.ANYONE, "GET")
async def docs_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


@allow(Access.ANYONE, "GET")
async def docs_asset(request: HttpRequest, name: str) -> HttpResponse:
    if name == "starter.js":
        content, content_type = STARTER, "text/javascript; charset=utf-8"
    elif name in ASSETS:
        content, content_type = _asset(name), ASSETS[name]
    else:
        return HttpResponse(
            orjson.dumps(errors.body(request, "name", f"no docs asset {name!r}")),
            status=404,
            content_type="application/json",
        )
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={ONE_DAY_S}"
    return response


@cache
def _asset(name: str) -> bytes:
    return (resources.files(ASSET_PACKAGE) / "static" / name).read_bytes()
