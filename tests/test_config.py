"""config.toml: the shipped file loads, every mistake is reported with the key, env overrides work,
and the `hotline` command reports bad configuration and sets up a database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.config import DEFAULT_CONFIG, REPO_ROOT, ConfigError, load_settings

HOTLINE = Path(sys.executable).parent / "hotline"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


# ---- the shipped file ------------------------------------------------------------------------


def test_shipped_config_loads() -> None:
    settings = load_settings(DEFAULT_CONFIG)
    assert settings.hotline.name == "演示县12345政务服务便民热线"
    assert settings.hotline.timezone == "Asia/Shanghai"
    assert settings.server.port == 8000
    assert settings.sla.calendar.working_hours == ["08:30-12:00", "14:30-17:30"]
    assert settings.sla.return_window_working_days == 2
    assert settings.sla.max_extension_working_days == 10
    assert settings.dispatch.ticket_number_digits == 4
    assert settings.auth.api_basic_auth is True
    # The relative SQLite path is made absolute against the repository (the file's folder).
    assert settings.database_url == f"sqlite:///{REPO_ROOT / 'var' / 'hotline.db'}"
    assert settings.resolve(settings.dispatch.category_tree).is_file()


def test_shipped_config_is_the_default() -> None:
    assert load_settings().model_dump() == load_settings(DEFAULT_CONFIG).model_dump()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.server.port == 8000
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"


# ---- mistakes name the key ---------------------------------------------------------------------


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurll = "x"\n')
    message = config_error(path)
    assert str(path) in message
    assert "database.urll" in message
    assert "unknown key" in message


def test_unknown_section_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "[databse]\nurl = 'sqlite:///x.db'\n"))
    assert "databse" in message
    assert "unknown key" in message


def test_unknown_nested_key_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "[sla.calendar]\nextra_holiday = []\n"))
    assert "sla.calendar.extra_holiday" in message
    assert "unknown key" in message


def test_wrong_value_type_names_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[server]\nport = "eighty"\n'))
    assert "server.port" in message
    assert "eighty" in message
    assert "integer" in message


def test_out_of_range_port_names_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "[server]\nport = 70000\n"))
    assert "server.port" in message
    assert "65535" in message


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('["8:30-12:00"]', "HH:MM-HH:MM"),
        ('["08:30-25:00"]', "invalid time"),
        ('["12:00-08:30"]', "does not start before it ends"),
        ('["08:30-12:00", "11:00-17:30"]', "must not overlap"),
        ("[]", "at least one"),
    ],
)
def test_bad_working_hours_name_key(tmp_path: Path, entry: str, reason: str) -> None:
    message = config_error(write(tmp_path, f"[sla.calendar]\nworking_hours = {entry}\n"))
    assert "sla.calendar.working_hours" in message
    assert reason in message


def test_bad_timezone_names_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[hotline]\ntimezone = "Mars/Olympus"\n'))
    assert "hotline.timezone" in message
    assert "Mars/Olympus" in message


def test_unsupported_database_names_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[database]\nurl = "mysql://root@localhost/hotline"\n'))
    assert "database.url" in message
    assert "sqlite" in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[server]\nport = "x"\nhots = "y"\n'))
    assert "server.port" in message
    assert "server.hots" in message


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[hotline]\nname = "x"\n\n[server\nport = 8000\n')
    message = config_error(path)
    assert str(path) in message
    assert "not valid TOML" in message
    assert "line 4" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = config_error(path)
    assert str(path) in message
    assert "not found" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes('[hotline]\nname = "演示县"\n'.encode("gbk"))
    message = config_error(path)
    assert str(path) in message
    assert "UTF-8" in message


# ---- environment -------------------------------------------------------------------------------


def test_hotline_config_picks_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[hotline]\nname = "另一条热线"\n[server]\nport = 9123\n', "other.toml")
    monkeypatch.setenv("HOTLINE_CONFIG", str(path))
    settings = load_settings()
    assert settings.hotline.name == "另一条热线"
    assert settings.server.port == 9123
    assert settings.base_dir == tmp_path


def test_hotline_config_pointing_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml: configuration file not found"):
        load_settings()


def test_explicit_path_wins_over_hotline_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_CONFIG", str(write(tmp_path, "[server]\nport = 1111\n", "env.toml")))
    assert load_settings(write(tmp_path, "[server]\nport = 2222\n", "arg.toml")).server.port == 2222


def test_database_url_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///from-file.db"\necho = true\n')
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://hotline@db.example:5432/hotline")
    settings = load_settings(path)
    assert settings.database_url == "postgresql+psycopg://hotline@db.example:5432/hotline"
    assert settings.database.echo is True  # the rest of the section is kept


def test_database_url_override_absolute_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert load_settings(DEFAULT_CONFIG).database_url == f"sqlite:///{tmp_path / 'x.db'}"


def test_bad_database_url_override_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "mysql://root@localhost/hotline")
    with pytest.raises(ConfigError) as info:
        load_settings(DEFAULT_CONFIG)
    message = str(info.value)
    assert "HOTLINE_DATABASE_URL" in message
    assert "mysql://root@localhost/hotline" in message
    assert "must start with sqlite: or postgresql:" in message


def test_empty_database_url_override_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "")
    assert load_settings(DEFAULT_CONFIG).database_url.endswith("/var/hotline.db")


# ---- relative paths ----------------------------------------------------------------------------


def test_relative_sqlite_path_is_resolved_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "hotline"
    folder.mkdir(parents=True)
    path = write(folder, '[database]\nurl = "sqlite:///data/hotline.db"\n')
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    settings = load_settings(path)
    assert settings.database_url == f"sqlite:///{folder / 'data' / 'hotline.db'}"


def test_relative_config_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[database]\nurl = "sqlite:///h.db"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings("config.toml")
    assert settings.base_dir.is_absolute()
    assert settings.database_url == f"sqlite:///{tmp_path / 'h.db'}"


def test_absolute_and_memory_sqlite_are_left_alone(tmp_path: Path) -> None:
    absolute = load_settings(write(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/abs.db"\n'))
    assert absolute.database_url == f"sqlite:///{tmp_path}/abs.db"
    memory = load_settings(write(tmp_path, '[database]\nurl = "sqlite:///:memory:"\n', "mem.toml"))
    assert memory.database_url == "sqlite:///:memory:"


def test_relative_category_tree_is_resolved_against_config_folder(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[dispatch]\ncategory_tree = "tree.toml"\n'))
    assert settings.resolve(settings.dispatch.category_tree) == tmp_path / "tree.toml"


# ---- the command line --------------------------------------------------------------------------


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_CONFIG", "HOTLINE_DATABASE_URL")}
    full_env.update(env or {})
    return subprocess.run(
        [str(HOTLINE), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


def test_cli_check_config_ok(tmp_path: Path) -> None:
    result = run_cli("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_cli_check_config_bad_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurll = "x"\n')
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 2
    assert "database.urll" in result.stderr
    assert "unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_check_config_bad_value(tmp_path: Path) -> None:
    result = run_cli("--config", str(write(tmp_path, '[server]\nport = "eighty"\n')), "check-config")
    assert result.returncode == 2
    assert "server.port" in result.stderr


def test_cli_check_config_missing_file(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "check-config")
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_database_override(tmp_path: Path) -> None:
    result = run_cli("check-config", env={"HOTLINE_DATABASE_URL": "oracle://x"})
    assert result.returncode == 2
    assert "HOTLINE_DATABASE_URL" in result.stderr


def test_cli_hotline_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///elsewhere.db"\n')
    result = run_cli("check-config", env={"HOTLINE_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "elsewhere.db") in result.stdout


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from core.migrate import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def _db_counts(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as conn:
        counts: dict[str, object] = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("departments", "categories", "subcategories", "users", "tickets", "ticket_events")
        }
        counts["states"] = sorted(row[0] for row in conn.execute("SELECT state FROM tickets"))
        counts["numbers"] = sorted(row[0] for row in conn.execute("SELECT number FROM tickets"))
        counts["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return counts


def test_cli_init_db_and_demo_data(tmp_path: Path) -> None:
    db = tmp_path / "data" / "hotline.db"
    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{db}"}

    first = run_cli("init-db", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "database ready" in first.stdout
    assert str(db) in first.stdout
    after_init = _db_counts(db)
    assert after_init["categories"] and after_init["subcategories"]
    assert after_init["tickets"] == 0
    assert after_init["revision"] == [(head_revision(),)]

    again = run_cli("init-db", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _db_counts(db) == after_init

    demo = run_cli("demo-data", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    after_demo = _db_counts(db)
    assert after_demo["tickets"] == 7
    assert after_demo["users"] == 10
    assert after_demo["departments"] == 27
    assert after_demo["categories"] == after_init["categories"]
    assert after_demo["subcategories"] == after_init["subcategories"]
    states = set(after_demo["states"])  # type: ignore[arg-type]
    expected = {"registered", "dispatched", "in_progress", "returned", "replied", "closed", "archived"}
    assert expected <= states  # replied: a reply waiting for the hotline's review
    assert len(after_demo["numbers"]) == len(set(after_demo["numbers"]))  # type: ignore[arg-type]

    demo_again = run_cli("demo-data", env=env, cwd=tmp_path)
    assert demo_again.returncode == 0, demo_again.stderr
    assert "0 new tickets" in demo_again.stdout
    assert _db_counts(db) == after_demo

    # The demo's department links to the category tree are in place after init-db + demo-data.
    with sqlite3.connect(db) as conn:
        water = conn.execute(
            "SELECT d.code FROM subcategories s JOIN departments d ON d.id = s.default_department_id "
            "WHERE s.name = '停水'"
        ).fetchone()
        assert water == ("sw",)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Nothing was written next to the repository's own var/ database.
    assert not (tmp_path / "var").exists()


def test_cli_demo_data_without_the_review_of_replies(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "h.db"}"\n[dispatch]\nreview_replies = false\n'
        f'category_tree = "{REPO_ROOT / "dispatch" / "category_tree.toml"}"\n',
        encoding="utf-8",
    )
    assert run_cli("--config", str(config), "init-db", cwd=tmp_path).returncode == 0
    demo = run_cli("--config", str(config), "demo-data", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert _db_counts(tmp_path / "h.db")["tickets"] == 7


def test_cli_demo_data_events_replay(tmp_path: Path) -> None:
    """Demo tickets are made through real transitions: every ticket's log replays to its state."""
    from sqlalchemy import select

    from dispatch.models import Ticket
    from dispatch.state_machine import replay
    from hotline.config import parse_settings
    from hotline.context import HotlineContext

    db = tmp_path / "hotline.db"
    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{db}"}
    assert run_cli("init-db", env=env).returncode == 0
    assert run_cli("demo-data", env=env).returncode == 0
    ctx = HotlineContext.from_settings(
        parse_settings({"database": {"url": f"sqlite:///{db}"}}, "t", tmp_path)
    )
    try:
        with ctx.unit_of_work() as session:
            for ticket in session.scalars(select(Ticket)).unique():
                assert replay(ticket.events) == ticket.state_enum, ticket.number
    finally:
        ctx.close()
