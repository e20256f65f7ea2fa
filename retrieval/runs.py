"""A log of every index and ingest run in SQL: SQLite under ``var/`` by default, PostgreSQL by URL.

Operators ask "what did we ingest for this tenant, when, and did it change anything?"; the vector
store only knows the current state, so each run's counts are kept here (``tosei status``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.engine import Engine

from retrieval.index import SyncReport

metadata = MetaData()

index_runs = Table(
    "tosei_index_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(32), nullable=False),
    Column("tenant", String(64), nullable=False, index=True),
    Column("source", String(300), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("embedded", Integer, nullable=False),
    Column("errors", Integer, nullable=False, default=0),
    Column("embedder", String(200), nullable=False),
)


class RunLog:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine = create_engine(url, pool_pre_ping=True)
        metadata.create_all(self._engine)

    def record(
        self,
        command: str,
        report: SyncReport,
        *,
        started: dt.datetime,
        embedder: str,
        errors: int = 0,
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(index_runs).values(
                    command=command,
                    tenant=report.tenant,
                    source=report.source,
                    started_at=started,
                    finished_at=dt.datetime.now(dt.UTC),
                    added=report.added,
                    updated=report.updated,
                    unchanged=report.unchanged,
                    deleted=report.deleted,
                    duplicates=report.duplicates,
                    embedded=report.embedded,
                    errors=errors,
                    embedder=embedder,
                )
            )

    def recent(self, limit: int = 20, tenant: str | None = None) -> list[dict[str, Any]]:
        query = select(index_runs).order_by(index_runs.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(index_runs.c.tenant == tenant)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()} for row in rows]

    def close(self) -> None:
        self._engine.dispose()
