"""The case database: one engine per process, sessions, and migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from aftersales.domain.settings import get_settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class likely(FunctionElement):
    """A condition true for most rows, said so to SQLite's planner (``likely(…)``; elsewhere the
    condition as it is). SQLite plans without statistics (nobody runs ANALYZE on it) and takes an
    equality on an indexed column for a selective one: ``likely(wait.status = 'open')`` lets it
    read the open waits' partial index in deadline order instead of every open wait, sorted."""

    inherit_cache = True  # no type: a Boolean one would be written `likely(…) = 1` on SQLite


@compiles(likely)
def _likely(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(likely, "sqlite")
def _likely_sqlite(element, compiler, **kw):
    return f"likely({compiler.process(element.clauses, **kw)})"


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # several processes share the file
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def preload() -> None:
    """Load once what every run's first query needs, for a process that forks flow runs
    (warm_start.py): the database's dialect and driver (``create_engine`` imports them; py-spy: 7 %
    of a resumed return's own work) and the ORM's mappers. No engine and no connection: those must
    not cross a fork. The URL is read afresh, not from the settings cache a fork would inherit."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import configure_mappers

    import aftersales.domain.models  # noqa: F401  (the tables, for the mappers)
    from aftersales.domain.settings import Settings

    make_url(Settings().database_url).get_dialect().import_dbapi()
    configure_mappers()


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return _make_engine(url or get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def migrate(url: str | None = None) -> None:
    """Bring the case database to the newest schema (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    command.upgrade(cfg, "head")
