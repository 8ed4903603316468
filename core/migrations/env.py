"""Alembic environment: the engine (and, to write a new migration, the models' metadata) come from
the caller through `core.migrate`, so this floor needs no domain package."""

from alembic import context

from core.migrate import schema_object

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=context.config.attributes.get("metadata"),
        render_as_batch=True,  # SQLite can only ALTER tables by copying them
        compare_type=True,
        include_object=schema_object,
    )
    context.run_migrations()
