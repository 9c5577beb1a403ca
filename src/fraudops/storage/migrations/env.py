"""Alembic environment: runs migrations on the connection the Warehouse passes in."""

from alembic import context
from sqlalchemy import Connection, create_engine

from fraudops.storage.tables import Base


def _run_migrations() -> None:
    """Migrate on the given connection, or on a fresh engine from `sqlalchemy.url`."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as fresh:
            _configure_and_run(fresh)
        engine.dispose()
        return
    _configure_and_run(connection)


def _configure_and_run(connection: Connection) -> None:
    """Run every pending revision in one transaction (batch mode lets SQLite alter tables)."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    msg = "offline (SQL script) migrations are not supported; run Warehouse.migrate()"
    raise RuntimeError(msg)
_run_migrations()
