"""Alembic, driven from code: `hotline init-db` upgrades the configured database to the newest schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Tables a running process owns and creates itself, outside the schema (the live-event relay's large
# bodies, kept for minutes): migrations and model comparisons leave them alone.
RUNTIME_TABLES = frozenset({"live_event_bodies"})


def schema_object(_obj: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
    """Alembic's include_object: everything but the runtime tables."""
    return not (type_ == "table" and name in RUNTIME_TABLES)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def new_revision(engine: Engine, metadata: MetaData, message: str) -> None:
    """For developers: write a migration for the difference between the models (`metadata`, all
    packages' tables: `hotline.schema.metadata`) and the database."""
    config = alembic_config(engine)
    config.attributes["metadata"] = metadata
    command.revision(config, message=message, autogenerate=True)
