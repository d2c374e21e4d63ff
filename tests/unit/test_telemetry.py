"""Tracing: off unless ONBOARD_TRACE_DIR is set; on, spans reach one file per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "ONBOARD_TRACE_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def test_off_loads_no_tracer_and_patches_nothing() -> None:
    out = _run(
        """
        import sys
        from reflex.istate.manager.redis import StateManagerRedis
        before = StateManagerRedis.get_state
        loaded = set(sys.modules)
        from onboard_app import telemetry
        telemetry.install()
        with telemetry.span("onboard.session_check") as span:
            pass
        tracing = ("opentelemetry", "reflex_otel")
        new = [m for m in set(sys.modules) - loaded if m.startswith(tracing)]
        print(telemetry.enabled, span, StateManagerRedis.get_state is before, new or "none")
        """
    )
    assert out.split() == ["False", "None", "True", "none"]


def test_on_writes_nested_spans_with_sql_and_bytes(tmp_path: Path) -> None:
    _run(
        """
        import asyncio
        import sqlalchemy as sa
        from onboard_app import telemetry
        telemetry.install()
        engine = sa.create_engine("sqlite://")

        async def main():
            with telemetry.span("onboard.session_check"):
                await asyncio.to_thread(lambda: engine.connect().execute(sa.text("select 1")))
                telemetry.add_bytes(5)
                telemetry.add_bytes(7)

        asyncio.run(main())
        import reflex_base.otel as otel
        assert otel.enabled  # Reflex's own trace points are on too
        # The spans are written when the process exits (the provider's shutdown flush).
        """,
        ONBOARD_TRACE_DIR=str(tmp_path),
    )
    files = list(tmp_path.glob("spans-*.jsonl"))
    assert len(files) == 1
    spans = {s["name"]: s for s in map(json.loads, files[0].read_text().splitlines())}
    check, statement = spans["onboard.session_check"], spans["db.statement"]
    assert statement["parent"] == check["span"]  # carried into the thread
    assert statement["trace"] == check["trace"]
    assert check["bytes"] == 12
    assert check["start"] <= statement["start"] <= statement["end"] <= check["end"]
