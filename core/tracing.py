"""Trace context (OpenTelemetry): from a worker's poll, through Kafka, to the gateway's ingest,
its requests and its pushes to subscribers.

A worker opens one span per poll; every record it publishes carries the span's context in a
``traceparent`` Kafka header (``context_headers``), and the gateway continues that trace when it
ingests the record (``context_from``) and pushes the change to subscribers. Log lines written
inside a span carry its trace id (see ``logs.JsonFormatter``).

Spans are exported over OTLP when the standard variables ask for it: ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (with ``OTEL_EXPORTER_OTLP_PROTOCOL``, headers, timeouts,
``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER`` and the batch processor's ``OTEL_BSP_*``, all read by
the SDK itself), unless ``OTEL_TRACES_EXPORTER=none`` or ``OTEL_SDK_DISABLED=true``. Without an
exporter the gateway's hot paths (requests, ingest, pushes) make no spans at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

_configured = False
_exporting = False


def configure(service_name: str) -> None:
    """Install the SDK's tracer provider once per process, exporting when the environment says so.

    ``service_name`` names the process unless ``OTEL_SERVICE_NAME`` does."""
    global _configured, _exporting
    if _configured:
        return
    _configured = True
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # the host application set its own up
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if _export_requested():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _exporting = True
    trace.set_tracer_provider(provider)


def exporting() -> bool:
    """Whether spans leave the process: the gateway makes spans on its hot paths only then."""
    return _exporting


def flush() -> None:
    """Send the spans still batched (a process about to exit would lose them otherwise)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def tracer(name: str) -> trace.Tracer:
    """A tracer of the process's provider, whenever ``configure`` installs it (until then, and
    in a process that never does, its spans are no-ops)."""
    return trace.get_tracer(name)


def context_headers() -> tuple[tuple[str, bytes], ...]:
    """The current trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((key, value.encode()) for key, value in carrier.items())


def context_from(headers: Iterable[tuple[str | bytes, bytes]]) -> context.Context | None:
    """The trace context that Kafka or HTTP headers carry, or None when they carry none."""
    carrier = {
        (name.decode("latin-1") if isinstance(name, bytes) else name).lower(): value.decode("latin-1")
        for name, value in headers
    }
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, as hex, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def _export_requested() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
