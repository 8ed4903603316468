"""The `hotline` command: set up the database, load demo data, serve."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from core.errors import HotlineError
from hotline.config import ConfigError, Settings, load_settings


def _context(settings: Settings):  # type: ignore[no-untyped-def]
    from hotline.context import HotlineContext

    return HotlineContext.from_settings(settings)


def cmd_check_config(settings: Settings, _args: argparse.Namespace) -> int:
    from dispatch.gazetteer import load_gazetteer

    places = load_gazetteer(settings.resolve(settings.dispatch.gazetteer))
    towns = len(places.towns)
    print(f"configuration OK; database {settings.database_url}; gazetteer {towns} towns")
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from sla.evaluation import parse_month, previous_month
    from sla.report.service import make_report

    ctx = _context(settings)
    today = ctx.clock.now().date()
    first = parse_month(args.month) if args.month else previous_month(today.replace(day=1))
    if first > today:
        print(f"error: {first:%Y-%m} has not begun", file=sys.stderr)
        return 2
    with ctx.unit_of_work() as session:
        for made in make_report(session, ctx, first):
            print(f"{made.path} ({made.size} bytes)")
    return 0


def cmd_locate_tickets(settings: Settings, args: argparse.Namespace) -> int:
    from dispatch.places import locate_tickets

    ctx = _context(settings)
    with ctx.unit_of_work() as session:
        moved = locate_tickets(session, ctx.gazetteer, only_missing=not args.all)
    print(f"{moved} tickets placed anew by the gazetteer")
    return 0


def cmd_init_db(settings: Settings, _args: argparse.Namespace) -> int:
    from core.migrate import upgrade
    from dispatch.catalog import load_category_tree, sync_category_tree

    ctx = _context(settings)
    upgrade(ctx.engine)
    tree = load_category_tree(settings.resolve(settings.dispatch.category_tree))
    with ctx.unit_of_work() as session:
        missing = sync_category_tree(session, tree)
    if missing:
        print(
            f"note: {len(missing)} default departments of the category tree are not in the database yet; "
            "they are linked when the departments are added (e.g. by `hotline demo-data`)"
        )
    print(f"database ready: {settings.database_url}")
    return 0


def cmd_demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.demo_data import DEMO_PASSWORD, load_demo

    for line in load_demo(_context(settings), args.history_days):
        print(line)
    print(f"demo users: admin, banzhang, op01-op03, sw_lly, cgj_lly, … (password: {DEMO_PASSWORD})")
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from core.accounts.models import Role
    from core.accounts.service import create_user
    from core.departments import Department

    ctx = _context(settings)
    with ctx.unit_of_work() as session:
        department_id = None
        if args.department:
            department_id = session.scalar(select(Department.id).where(Department.code == args.department))
            if department_id is None:
                raise SystemExit(f"error: department {args.department!r} does not exist")
        create_user(
            session,
            args.username,
            args.password,
            Role(args.role),
            args.name or args.username,
            ctx.clock.now(),
            department_id,
        )
    print(f"user {args.username} created")
    return 0


def cmd_issue_token(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from core.accounts.models import User
    from core.accounts.service import issue_token

    ctx = _context(settings)
    with ctx.unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == args.username))
        if user is None:
            raise SystemExit(f"error: no user {args.username!r}")
        print(issue_token(session, user, ctx.clock.now(), args.label))
    return 0


def cmd_train_router(settings: Settings, args: argparse.Namespace) -> int:
    from core import semantics
    from dispatch.router_training import describe, train_router

    understanding = settings.understanding
    semantics.configure(understanding.encoder, understanding.threads or None)
    if args.seed_only:
        result = train_router(None, seed_only=True, force=args.force)
    else:
        ctx = _context(settings)
        with ctx.unit_of_work() as session:
            result = train_router(session, force=args.force)
    print(describe(result))
    return 0


def cmd_embed_kb(settings: Settings, _args: argparse.Namespace) -> int:
    from core import semantics
    from core.errors import HotlineError
    from knowledge_base.service import embed_all, index_status

    understanding = settings.understanding
    semantics.configure(understanding.encoder, understanding.threads or None)
    ctx = _context(settings)

    def progress(done: int, total: int) -> None:
        print(f"已嵌入 {done}/{total} 条知识", flush=True)

    try:
        with ctx.unit_of_work() as session:
            made = embed_all(session, progress)
            status = index_status(session)
    except HotlineError as exc:
        print(f"错误：{exc.zh}", file=sys.stderr)
        return 1
    print(f"made {made}; {status['embedded']}/{status['total']} entries embedded by {status['model']}")
    return 0


def cmd_speech_model(settings: Settings, _args: argparse.Namespace) -> int:
    """Join the packaged Whisper model and check it (what `hotline serve` would do at its start)."""
    from callcenter.asr.transcriber import ModelError
    from callcenter.asr.whisper import check_whisper_folder, packaged_model
    from callcenter.recording import sha256_of

    asr = settings.callcenter.asr
    try:
        if asr.whisper_model is not None:
            folder = check_whisper_folder(settings.resolve(asr.whisper_model))
        else:
            folder = packaged_model(settings.resolve(asr.whisper_folder))
    except ModelError as exc:
        print(f"错误：语音模型不可用：{exc}", file=sys.stderr)
        return 1
    model = folder / "model.bin"
    size, digest = model.stat().st_size, sha256_of(model)
    print(f"{folder}: model.bin {size} bytes, SHA-256 {digest} (engine {asr.engine})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import os

    import uvicorn

    host, port = args.host or settings.server.host, args.port or settings.server.port
    workers = args.workers or 1
    if workers > 1:
        check_split(settings, "serve --workers N")
        # Each worker process builds its own app from the same configuration file.
        if settings.config_file is not None:
            os.environ["HOTLINE_CONFIG"] = str(settings.config_file)
        uvicorn.run("hotline.app:from_environment", factory=True, host=host, port=port, workers=workers)
        return 0
    if settings.callcenter.mode == "split":
        check_split(settings, "serve")
    from hotline.app import build_app

    uvicorn.run(build_app(settings), host=host, port=port)
    return 0


def check_split(settings: Settings, what: str) -> None:
    """Many processes share calls and live updates through PostgreSQL; SQLite is one box, one process."""
    if settings.callcenter.mode != "split":
        raise ConfigError(
            f'`hotline {what}` needs [callcenter] mode = "split" (inline mode runs the calls and the '
            'scheduled work inside one serve process); 需要设置 [callcenter] mode = "split"'
        )
    if not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            f"`hotline {what}` in split mode needs PostgreSQL (SQLite is for one process on one box); "
            "分布式部署（split）需要 PostgreSQL 数据库"
        )


def cmd_media_host(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from hotline.controller import run_media_host

    check_split(settings, "media-host")
    return asyncio.run(run_media_host(settings, args.name))


def cmd_sip_proxy(settings: Settings, _args: argparse.Namespace) -> int:
    import asyncio

    from hotline.controller import run_sip_proxy

    check_split(settings, "sip-proxy")
    return asyncio.run(run_sip_proxy(settings))


def cmd_controller(settings: Settings, _args: argparse.Namespace) -> int:
    import asyncio

    from hotline.controller import run_controller

    check_split(settings, "controller")
    return asyncio.run(run_controller(settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 citizen-service hotline")
    parser.add_argument(
        "--config", help="config file (default: $HOTLINE_CONFIG, else config.toml at the project root)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
        "check-config": ("validate the configuration and exit", cmd_check_config),
        "init-db": ("create or upgrade the database schema and load the category tree", cmd_init_db),
        "demo-data": ("load the demo county's departments, users and tickets", cmd_demo_data),
        "create-user": ("add a user", cmd_create_user),
        "issue-token": ("print a new API token for a user", cmd_issue_token),
        "serve": ("start the web application", cmd_serve),
        "controller": (
            "split mode: run the call centre and the scheduled work (active, or on standby)",
            cmd_controller,
        ),
        "media-host": (
            "split mode: run this machine's media workers (--name from media_hosts)",
            cmd_media_host,
        ),
        "sip-proxy": ('split mode: run Kamailio on a machine of its own (kamailio = "own")', cmd_sip_proxy),
        "embed-kb": (
            "make the knowledge base's missing embeddings (after a model change), with progress",
            cmd_embed_kb,
        ),
        "train-router": ("retrain the router on the seed corpus and the signed tickets", cmd_train_router),
        "speech-model": ("join the packaged Whisper model and check its SHA-256", cmd_speech_model),
        "report": ("make the monthly analysis report (PDF and XLSX)", cmd_report),
        "locate-tickets": (
            "place tickets in towns and communities again after a gazetteer change",
            cmd_locate_tickets,
        ),
    }
    for name, (help_text, func) in commands.items():
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(func=func)
        if name == "serve":
            command.add_argument("--host")
            command.add_argument("--port", type=int)
            command.add_argument(
                "--workers", type=int, help="web processes (split mode on PostgreSQL; default 1)"
            )
        if name == "media-host":
            command.add_argument("--name", required=True, help="a name in [[callcenter.media_hosts]]")
        if name == "create-user":
            command.add_argument("username")
            command.add_argument("--password", required=True)
            command.add_argument(
                "--role", required=True, choices=["operator", "liaison", "supervisor", "admin"]
            )
            command.add_argument("--department", help="department code (liaisons only)")
            command.add_argument("--name", help="display name")
        if name == "train-router":
            command.add_argument("--seed-only", action="store_true", help="write the shipped model")
            command.add_argument("--force", action="store_true", help="keep the new model even if worse")
        if name == "demo-data":
            command.add_argument(
                "--history-days",
                type=int,
                default=0,
                help="also this many days of past tickets (make run: 60)",
            )
        if name == "report":
            command.add_argument("--month", help="YYYY-MM (default: last month)")
        if name == "locate-tickets":
            command.add_argument("--all", action="store_true", help="every ticket, not only unplaced ones")
        if name == "issue-token":
            command.add_argument("username")
            command.add_argument("--label", default="")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return args.func(settings, args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # catalogue and account errors carry their own message
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except HotlineError as exc:  # a refusal (a malformed month, a missing font): its Chinese message too
        print(f"error: {exc} ({exc.zh})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
