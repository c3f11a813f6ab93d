"""OpenTelemetry spans, exported over OTLP/HTTP only when tracing is configured.

Unset, ``span`` is a no-op context manager: no OpenTelemetry import, no cost.

Usage::

    configure_tracing(settings)           # once, at start
    with span("llm.stream", model="qwen"):
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sage_platform.config import Settings

_tracer: Any = None
_provider: Any = None


def configure_tracing(settings: Settings) -> bool:
    """Set up the OTLP exporter when ``--enable_trace`` or ``--trace_jaeger_url`` is given.

    The provider is this module's own, not OpenTelemetry's global one (which can be set once per process):
    configured again, as a second server in one process does, spans go to the new endpoint."""
    global _tracer, _provider
    flush_tracing(shutdown=True)
    if not settings.tracing_enabled:
        _tracer = None
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = (settings.trace_jaeger_url or "http://127.0.0.1:4318").rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": "sage-agent-server"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _provider, _tracer = provider, provider.get_tracer("sage_platform.agent")
    return True


def flush_tracing(*, shutdown: bool = False) -> None:
    """Send the spans still buffered (at shutdown, so none are lost); ``shutdown`` also stops the exporter."""
    global _provider, _tracer
    if _provider is None:
        return
    _provider.force_flush()
    if shutdown:
        _provider.shutdown()
        _provider = _tracer = None


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes={k: str(v) for k, v in attributes.items()}):
        yield


def current_trace_id() -> str | None:
    """The trace id of the current span as 32 hex digits; None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None
