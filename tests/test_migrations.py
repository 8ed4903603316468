"""Alembic migrations: the migrated database equals the models on both backends, SQLite runs in WAL
mode, and the migrations go down to nothing and up again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlalchemy.engine import Connection

from core.db import make_engine
from core.migrate import MIGRATIONS, downgrade, schema_object, upgrade
from hotline.schema import metadata


def differences(connection: Connection, target: MetaData = metadata) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "include_object": schema_object},
    )
    return list(compare_metadata(context, target))


def head() -> str:
    revision = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert revision is not None
    return revision


def test_migrated_database_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert differences(connection) == []
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            assert current == [head()]
    finally:
        engine.dispose()


def test_comparison_would_see_a_difference(db_url: str) -> None:
    """Guard against a vacuous check: a model with one more column is reported."""
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["tickets"].append_column(Column("not_in_database", Integer))
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            found = differences(connection, changed)
    finally:
        engine.dispose()
    assert [(d[0], d[3].name) for d in found if isinstance(d, tuple)] == [("add_column", "not_in_database")]


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "wal.db").exists()


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables

        downgrade(engine, "base")
        left = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0

        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == tables
        with engine.connect() as connection:
            assert differences(connection) == []
    finally:
        engine.dispose()


def test_each_step_goes_down_and_up(tmp_path: Path) -> None:
    """Every revision's downgrade undoes exactly its upgrade (walked one step at a time)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    revisions = [s.revision for s in reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions()))]
    try:
        seen: list[set[str]] = []
        for revision in revisions:
            upgrade(engine, revision)
            seen.append(set(inspect(engine).get_table_names()))
        for index in range(len(revisions) - 1, 0, -1):
            downgrade(engine, revisions[index - 1])
            assert set(inspect(engine).get_table_names()) == seen[index - 1]
        downgrade(engine, "base")
        upgrade(engine, "head")
        with engine.connect() as connection:
            assert differences(connection) == []
    finally:
        engine.dispose()
