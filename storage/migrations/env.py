from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

import storage.models  # noqa: F401 - registers the tables on SQLModel.metadata
from sqlmodel import SQLModel

config = context.config

# Any constant will do, as long as every process migrating this database uses the same one.
ADVISORY_LOCK = 0x4C616E67536F  # "LangSo"


def run() -> None:
    # hide_parameters: a failing statement's values (which may be people's data) stay out of errors
    engine = create_engine(config.get_main_option("sqlalchemy.url"), hide_parameters=True)
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:  # several processes may start at once: one migrates, the others wait here
            _advisory(connection, "pg_advisory_lock")
        try:
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if postgres:
                _advisory(connection, "pg_advisory_unlock")
    engine.dispose()


def _advisory(connection: Connection, function: str) -> None:
    # session-level lock: it outlives the commit below, which leaves alembic its own transaction
    connection.execute(text(f"SELECT {function}(:key)"), {"key": ADVISORY_LOCK})
    connection.commit()


run()
