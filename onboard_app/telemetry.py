"""Where an event's time goes: OpenTelemetry spans, on only when ``ONBOARD_TRACE_DIR`` is set.

Reflex 0.10 has trace points of its own (one span per event, chained events as children;
``reflex_base.otel``) that the ``reflex-otel`` package turns on. :func:`install` turns them
on with a tracer whose spans go, one JSON line each, to ``<ONBOARD_TRACE_DIR>/spans-<pid>.jsonl``
(every worker its own file), and adds spans where Reflex has none:

* ``reflex.state.acquire`` (the lock and the load of the tab's state), inside it
  ``reflex.state.lock`` and ``reflex.state.load``; ``reflex.state.save`` with the bytes
  written (under Reflex's opportunistic lock the save runs when the lease ends, in the
  trace of the event that took the lease);
* ``reflex.delta`` (resolving what changed) and ``reflex.socket.send`` with the bytes sent;
* ``db.statement`` for every SQL statement (SQLAlchemy's cursor events, any engine);
* the app's own :func:`span` points: ``onboard.session_check`` (the gate's verification),
  ``onboard.password_hash`` (waiting for and using a hash slot).

With the variable unset nothing of OpenTelemetry is imported, nothing is patched, and a
trace point costs one global read (:data:`enabled`) or, through :func:`span`, one call
returning a shared no-op context (measured in ``bench/micro.py``). ``bench/breakdown.py``
reads the files.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

R = TypeVar("R")

#: True once :func:`install` turned tracing on in this process.
enabled: bool = False
_tracer: Tracer | None = None
_NO_SPAN: AbstractContextManager[None] = nullcontext()
#: The attribute of a span that counts bytes (state saved, message sent).
BYTES = "onboard.bytes"


def span(name: str) -> AbstractContextManager[Any]:
    """A span named ``name`` around a block, or a shared no-op when tracing is off.

    Args:
        name: A fixed, low-cardinality name (``onboard.session_check``).

    Returns:
        A context manager.
    """
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name)


def install() -> None:
    """Turn tracing on in this process if ``ONBOARD_TRACE_DIR`` names a folder (else nothing).

    Idempotent; a forked worker keeps it on (the SDK's batch processor restarts its thread
    after a fork, and the exporter opens a file for the new pid).
    """
    global enabled, _tracer
    directory = os.environ.get("ONBOARD_TRACE_DIR", "").strip()
    if enabled or not directory:
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from reflex_otel import ReflexInstrumentor

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(
            json_lines_exporter(Path(directory)),
            max_queue_size=200_000,
            schedule_delay_millis=500,
            max_export_batch_size=4096,
        )
    )
    # ".*": no HTTP or websocket-connection spans (one per socket, open for the whole run).
    ReflexInstrumentor().instrument(tracer_provider=provider, excluded_urls=".*")
    _tracer = provider.get_tracer("onboard")
    _patch_reflex(_tracer)
    _listen_to_sql(_tracer)
    enabled = True


def json_lines_exporter(directory: Path) -> SpanExporter:
    """A span exporter writing one JSON object per span to ``<directory>/spans-<pid>.jsonl``.

    Args:
        directory: The folder (created if missing).

    Returns:
        The exporter (``bench/breakdown.py`` reads its files).
    """
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    directory.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    class JsonLinesExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            lines = []
            for item in spans:
                context = item.get_span_context()
                if context is None:
                    continue
                attributes = item.attributes or {}
                record = {
                    "name": item.name,
                    "trace": f"{context.trace_id:032x}",
                    "span": f"{context.span_id:016x}",
                    "parent": f"{item.parent.span_id:016x}" if item.parent else None,
                    "start": item.start_time,
                    "end": item.end_time,
                    "kind": item.kind.name,
                    "bytes": attributes.get(BYTES),
                }
                lines.append(json.dumps(record, separators=(",", ":")) + "\n")
            # One file per process: a forked worker writes its own.
            with lock, (directory / f"spans-{os.getpid()}.jsonl").open("a") as out:
                out.writelines(lines)
            return SpanExportResult.SUCCESS

    return JsonLinesExporter()


def add_bytes(size: int) -> None:
    """Count ``size`` bytes on the current span (a save, a message)."""
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        attributes = getattr(current, "attributes", None) or {}
        current.set_attribute(BYTES, int(attributes.get(BYTES, 0)) + size)


# --- spans where Reflex has none (only ever patched when tracing is on) ---------------------


def _wrap_async(cls: type, name: str, span_name: str, tracer: Tracer) -> None:
    original = cls.__dict__.get(name)
    if original is None:
        return

    @functools.wraps(original)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(span_name):
            return await original(*args, **kwargs)

    setattr(cls, name, traced)


class _TimedEntry:
    """An async context manager whose entry (and, optionally, exit) gets a span."""

    def __init__(self, inner: Any, tracer: Tracer, enter_name: str, exit_name: str | None) -> None:
        self._inner = inner
        self._tracer = tracer
        self._enter_name = enter_name
        self._exit_name = exit_name

    async def __aenter__(self) -> Any:
        with self._tracer.start_as_current_span(self._enter_name):
            return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        if self._exit_name is None:
            return await self._inner.__aexit__(*exc)
        with self._tracer.start_as_current_span(self._exit_name):
            return await self._inner.__aexit__(*exc)


def _wrap_context(
    cls: type, name: str, tracer: Tracer, enter_name: str, exit_name: str | None = None
) -> None:
    original = cls.__dict__.get(name)
    if original is None:
        return

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> _TimedEntry:
        return _TimedEntry(original(*args, **kwargs), tracer, enter_name, exit_name)

    setattr(cls, name, traced)


def _patch_reflex(tracer: Tracer) -> None:
    from reflex.app import EventNamespace
    from reflex.istate.manager import StateManager
    from reflex.istate.manager.disk import StateManagerDisk
    from reflex.istate.manager.memory import StateManagerMemory
    from reflex.istate.manager.redis import StateManagerRedis
    from reflex.state import BaseState
    from reflex_base import otel

    _wrap_context(StateManager, "modify_state_with_links", tracer, "reflex.state.acquire")
    _wrap_context(StateManagerRedis, "_lock", tracer, "reflex.state.lock")
    for manager in (StateManagerRedis, StateManagerDisk, StateManagerMemory):
        _wrap_async(manager, "get_state", "reflex.state.load", tracer)
        _wrap_async(manager, "set_state", "reflex.state.save", tracer)
    _wrap_async(BaseState, "_get_resolved_delta", "reflex.delta", tracer)
    _wrap_async(EventNamespace, "emit_update", "reflex.socket.send", tracer)

    collect = StateManagerRedis._collect_state_writes

    @functools.wraps(collect)
    def collect_counted(self: Any, *args: Any, **kwargs: Any) -> list[tuple[str, bytes]]:
        writes = collect(self, *args, **kwargs)
        add_bytes(sum(len(data) for _, data in writes))
        return writes

    StateManagerRedis._collect_state_writes = collect_counted  # type: ignore[method-assign]

    record = otel.record_message_size

    def record_counted(size: int, direction: str) -> None:
        record(size, direction)
        if direction == "transmit":
            add_bytes(size)

    otel.record_message_size = record_counted


def _listen_to_sql(tracer: Tracer) -> None:
    import sqlalchemy as sa
    from sqlalchemy import event

    key = "onboard.statement_spans"

    def before(conn: Any, *_args: Any) -> None:
        conn.info.setdefault(key, []).append(tracer.start_span("db.statement"))

    def after(conn: Any, *_args: Any) -> None:
        spans = conn.info.get(key)
        if spans:
            spans.pop().end()

    def failed(context: Any) -> None:
        spans = context.connection.info.get(key) if context.connection is not None else None
        if spans:
            spans.pop().end()

    event.listen(sa.Engine, "before_cursor_execute", before)
    event.listen(sa.Engine, "after_cursor_execute", after)
    event.listen(sa.Engine, "handle_error", failed)


def in_this_context(call: Callable[[], R]) -> Callable[[], R]:
    """``call``, made to run in the current context when tracing is on (for an executor).

    ``run_in_executor`` does not carry context variables, so spans made in a pool thread
    would otherwise start traces of their own. Off: ``call`` itself.
    """
    if not enabled:
        return call
    import contextvars

    return functools.partial(contextvars.copy_context().run, call)
