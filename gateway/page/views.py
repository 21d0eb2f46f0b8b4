"""Serving the page and its two assets, read once from the package.

The page is static: what it shows comes from the API, called by the browser with the visitor's
own credentials (none, or an API key they typed), so the guard applies their plan as it does to
any client. Assets are named by a digest of their content, so they are cached for a year and a
new release is fetched at once.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

import orjson
from django.http import HttpRequest, HttpResponse

from gpubroker.gateway.identity.access import Access, allow

ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
ONE_YEAR_S = 365 * 24 * 3600


@allow(Access.ANYONE, "GET", "HEAD")
async def page(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_page(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@allow(Access.ANYONE, "GET", "HEAD")
async def asset(request: HttpRequest, name: str) -> HttpResponse:
    stem, _, digest = name.rpartition("-")
    real = f"{stem}.{digest.rpartition('.')[2]}" if stem else ""
    if real not in ASSETS or name != _versioned(real):
        return HttpResponse(
            orjson.dumps({"detail": [{"field": "name", "message": f"no page asset {name!r}"}]}),
            status=404,
            content_type="application/json",
        )
    response = HttpResponse(_read(real), content_type=ASSETS[real])
    response["Cache-Control"] = f"public, max-age={ONE_YEAR_S}, immutable"
    return response


@cache
def _read(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


@cache
def _versioned(name: str) -> str:
    """``app.js`` -> ``app-<digest>.js``."""
    stem, _, extension = name.rpartition(".")
    return f"{stem}-{hashlib.sha256(_read(name)).hexdigest()[:12]}.{extension}"


@cache
def _page() -> bytes:
    html = _read("index.html").decode()
    for name in ASSETS:
        html = html.replace(f"/ui/{name}", f"/ui/{_versioned(name)}")
    return html.encode()
