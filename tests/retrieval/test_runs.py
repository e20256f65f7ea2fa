"""The run log on both SQL backends: SQLite (embedded default) and the machine's real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from retrieval.index import SyncReport
from retrieval.runs import RunLog

POSTGRES_URL = os.environ.get("TOSEI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> str:
    try:
        with create_engine(POSTGRES_URL).connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        if os.environ.get("CI"):
            raise  # CI machines start PostgreSQL: its absence is a failure there, not a skip
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def runlog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunLog]:
    url = f"sqlite:///{tmp_path / 'runs.sqlite3'}" if request.param == "sqlite" else _postgres_or_skip()
    log = RunLog(url)
    yield log
    log.close()


def test_runs_are_recorded_and_listed_newest_first(runlog: RunLog) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"  # the PostgreSQL table is shared: keep to our own rows
    started = dt.datetime.now(dt.UTC)
    runlog.record("index", SyncReport(tenant=tenant, source="procs", added=3), started=started, embedder="e")
    runlog.record(
        "ingest",
        SyncReport(tenant=tenant, source="ingest:docs", unchanged=3, deleted=1),
        started=started,
        embedder="e",
        errors=2,
    )
    rows = runlog.recent(10, tenant=tenant)
    assert [r["command"] for r in rows] == ["ingest", "index"]
    assert rows[0]["deleted"] == 1 and rows[0]["errors"] == 2 and rows[1]["added"] == 3
    assert rows[0]["started_at"] <= rows[0]["finished_at"]


def test_the_log_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite3'}"
    RunLog(url).record("index", SyncReport(tenant="a", source=None), started=dt.datetime.now(dt.UTC), embedder="e")
    assert len(RunLog(url).recent()) == 1
