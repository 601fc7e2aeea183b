"""Engine and session factory; schema managed by Alembic migrations
(``service/persistence/migrations``)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from sqlalchemy import DateTime, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from service.engine.clock import utcnow  # noqa: F401  (re-exported: callers import it from here)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


#: How long a statement waits for another writer's lock before failing (seconds). Workers wait
#: long (a busy moment should not cost a trial); the API waits briefly and retries the request
#: (service.interfaces.api.contention), so that a held lock becomes a 503, not a hung or failed
#: request.
DEFAULT_LOCK_TIMEOUT_S = 30.0


def make_engine(url: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": lock_timeout_s})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # WAL: readers don't block the writing worker
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(lock_timeout_s * 1000)}")
            cur.close()

        return engine
    connect_args = {}
    if url.startswith("postgresql"):
        connect_args["options"] = f"-c lock_timeout={int(lock_timeout_s * 1000)}"
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args=connect_args)


_migrate_lock = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # before import: plugin set-up logs
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _migrate_lock, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """An engine + session factory for one URL, migrated on creation."""

    def __init__(self, url: str, *, run_migrations: bool = True,
                 lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S):
        self.url = url
        self.engine = make_engine(url, lock_timeout_s=lock_timeout_s)
        if run_migrations:
            migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be opened; the message is one line naming the URL."""


URL_HELP = "e.g. sqlite:///paretonas.db or postgresql+psycopg://USER:PASSWORD@HOST/DB"


def shown_url(url: str) -> str:
    """The URL with its password masked (the text as given when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def open_database(url: str, **kwargs) -> Database:
    """``Database(url)``, or ``DatabaseUnavailable`` saying in one line why not."""
    try:
        return Database(url, **kwargs)
    except NoSuchModuleError:
        reason = f"unknown kind of database ({URL_HELP})"
    except ArgumentError:
        reason = f"not a database URL ({URL_HELP})"
    except ImportError as exc:
        reason = f"its driver is not installed ({exc})"
    except DBAPIError as exc:
        lines = str(exc.orig).strip().splitlines()
        reason = lines[0] if lines else type(exc.orig).__name__
    except (SQLAlchemyError, OSError, ValueError) as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
    raise DatabaseUnavailable(f"PARETONAS_DATABASE_URL={shown_url(url)!r}: cannot open the "
                              f"database: {reason}")
