"""Sending rendered JSON: ETag and 304, gzip when the client accepts it, and, for GETs, a copy
in the fast path so the next identical request skips Django altogether."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from gpubroker.gateway.fastpath import Prepared, Recipe
from gpubroker.gateway.runtime import GatewayRuntime


def respond(
    request: HttpRequest,
    runtime: GatewayRuntime,
    route: str,
    body: bytes,
    *,
    fingerprint: str | None,
    ttl_s: float | None = None,
    refresh: Recipe | None = None,
) -> HttpResponse:
    """``refresh``, when given, re-renders the body for a newer catalogue (see ``FastPath``)."""
    ttl_s = ttl_s or runtime.settings.cache_ttl_s
    prepared = Prepared.of(route, body, fingerprint=fingerprint, ttl_s=ttl_s, refresh=refresh)
    if request.method == "GET":
        runtime.fastpath.store(request.path, request.META.get("QUERY_STRING", "").encode(), prepared)
    if request.headers.get("If-None-Match", "").encode() == prepared.etag:
        response = HttpResponse(status=304)
    else:
        headers, content = prepared.headers(request.headers.get("Accept-Encoding", "").encode("latin-1"))
        response = HttpResponse(content)
        for name, value in headers:
            if name != b"content-length":
                response[name.decode()] = value.decode()
    response["ETag"] = prepared.etag.decode()
    return response
