"""Alembic, driven from code: `hotline init-db` upgrades the configured database to the newest schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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
