"""Trace context (OpenTelemetry) for polls and the records they publish.

A worker opens one span per poll; every record it publishes carries the span's context in a
``traceparent`` Kafka header, so a consumer can join its work to the poll that caused it. Log
lines written inside a span carry its trace id (see ``logs.JsonFormatter``). Exporting spans is
left to the deployment's OpenTelemetry configuration.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from gpubroker.core.bus import Headers

_configured = False


def tracer(name: str) -> trace.Tracer:
    """A tracer backed by the SDK, installing a provider once if the process has none."""
    global _configured
    if not _configured and not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    _configured = True
    return trace.get_tracer(name)


def context_headers() -> Headers:
    """The current trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((key, value.encode()) for key, value in carrier.items())


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, as hex, or None outside a span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
