"""Alembic environment: the engine comes from `hotline.migrate` (so from config.toml)."""

from alembic import context

from hotline.schema import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER tables by copying them
        compare_type=True,
    )
    context.run_migrations()
