"""Benchmark of the callback surveys: `python -m hotline.benches.callbacks`.

1. The claim: a scratch SQLite database (and the PostgreSQL database HOTLINE_DATABASE_URL points at,
   when it does; it must hold no tickets) is filled with `--due` replied tickets, enqueued as due
   callbacks (one set-based INSERT … SELECT, timed), then `--claims` callbacks are claimed one by one,
   each in its own committed transaction as the runner does: median and 95th percentile time.
2. The calls: the call centre on loopback (Kamailio, `--workers` pjsua2 media workers, the controller)
   and SIPp as the citizens' phones behind the trunk: they listen to the whole survey and press 1
   (satisfied), then 1 (solved), by RFC 4733. The survey runner places `--calls` survey calls with the
   real prompts (intro, the ticket number digit by digit, the reply, the question, solved or not);
   survey calls per hour = calls recorded / wall time × 3600. Bounded by `--calls` and
   `--max-seconds`; loopback only.

The clock is fixed at 10:00 today (inside the calling hours), so the benchmark runs at any hour.
Prints progress on stderr and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from core.clock import ManualClock
from core.migrate import upgrade
from dispatch.callbacks.service import Claim, callbacks_of
from dispatch.models import Ticket
from hotline.config import Settings, load_settings
from hotline.context import HotlineContext

CHUNK = 10_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_now() -> datetime:
    return datetime.combine(datetime.now().date(), clock_time(10, 0))


def fill_replied_tickets(ctx: HotlineContext, count: int, first: int = 0) -> None:
    """`count` replied tickets (bulk rows: this measures the queue, not the ticket loader)."""
    now = ctx.clock.now()
    for start in range(first, first + count, CHUNK):
        rows = [
            {
                "number": f"B{n:012d}",
                "channel": "phone",
                "caller_phone": f"139{n:08d}",
                "content": "诉求内容",
                "state": "replied",
                "reply_text": "已处理完毕",
                "created_at": now,
                "updated_at": now,
                "replied_at": now,
                "reply_approved_at": now,  # reviewed: ready for its callback
                "reopen_count": 0,
                "supervision_count": 0,
                "extension_days_granted": 0,
                "private": False,
                "version": 1,
            }
            for n in range(start, min(start + CHUNK, first + count))
        ]
        with ctx.unit_of_work() as session:
            session.execute(insert(Ticket.__table__), rows)


def _context(settings: Settings, url: str, clock: ManualClock) -> HotlineContext:
    copy = settings.model_copy(deep=True)
    copy.database.url = url
    ctx = HotlineContext.from_settings(copy, clock=clock)
    upgrade(ctx.engine)
    return ctx


def bench_claims(settings: Settings, url: str, due: int, claims: int) -> dict[str, Any]:
    ctx = _context(settings, url, ManualClock(bench_now()))
    try:
        with ctx.unit_of_work() as session:
            if session.scalar(select(func.count()).select_from(Ticket)):
                raise SystemExit(
                    f"error: {url} already holds tickets; point HOTLINE_DATABASE_URL at a scratch one"
                )
        started = time.perf_counter()
        fill_replied_tickets(ctx, due)
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        with ctx.unit_of_work() as session:
            queued = callbacks_of(ctx, session).enqueue_replied()
        enqueue_s = time.perf_counter() - started
        timings = []
        for _ in range(claims):
            started = time.perf_counter()
            with ctx.unit_of_work() as session:
                claim = callbacks_of(ctx, session).claim_next("bench")
            timings.append((time.perf_counter() - started) * 1000)
            assert claim is not None
        timings.sort()
        return {
            "due_callbacks": queued,
            "fill_s": round(fill_s, 2),
            "enqueue_s": round(enqueue_s, 3),
            "claim_ms_median": round(statistics.median(timings), 3),
            "claim_ms_p95": round(timings[int(len(timings) * 0.95) - 1], 3),
        }
    finally:
        ctx.close()


def bench_calls(settings: Settings, calls: int, workers: int, max_seconds: float) -> dict[str, Any]:
    from callcenter.testing.harness import LiveCallCentre, loopback_settings
    from callcenter.testing.sipkit import Sipp, free_udp_port, pcap
    from callcenter.worker import wav_seconds
    from dispatch.callbacks.runner import SurveyRunner

    folder = Path(tempfile.mkdtemp(prefix="callback-bench-"))
    trunk = free_udp_port()
    cc = loopback_settings(
        workers,
        ["1001"],
        recordings_dir=folder / "recordings",
        prompts_dir=folder / "prompts",
        runtime_dir=folder / "run",
        trunk_uri=f"sip:127.0.0.1:{trunk}",
    )
    copy = settings.model_copy(deep=True)
    copy.callcenter = cc
    copy.callbacks.concurrent_calls = workers
    copy.callbacks.sms.file = folder / "sms.jsonl"
    ctx = _context(copy, f"sqlite:///{folder / 'calls.db'}", ManualClock(bench_now()))
    try:
        fill_replied_tickets(ctx, calls)
        with LiveCallCentre(ctx, cc) as live:
            runner = SurveyRunner(ctx, live.controller, live.centre.prompts_dir)
            # The citizen listens to the whole survey (intro, ticket number, reply, question), presses 1,
            # listens to whether it was solved and presses 1 again (RFC 4733, pjsua2's payload type).
            sample = Claim(0, 0, 1, 0, f"B{0:012d}", "13900000000", "已处理完毕")
            menu = runner.menu_for(sample)
            listen = sum(wav_seconds(str(f)) for f in [*menu.opening, *menu.question]) + 0.5
            follow = sum(wav_seconds(str(f)) for f in menu.follow_up) + 0.5
            keys = pcap(f"sil:{listen:.2f}", "dtmf:1", f"sil:{follow:.2f}", "dtmf:1", "sil:0.2", dtmf_pt=120)
            phones = Sipp("uas_answer", port=trunk, service="citizen", calls=calls, limit=workers,
                          timeout=max_seconds + 30, pcaps={"audio": keys})  # fmt: skip
            with phones:
                phones.wait_until_listening()

                async def place_all() -> float:
                    started = time.perf_counter()
                    while len(runner.finished) < calls and time.perf_counter() - started < max_seconds:
                        await runner.run_once()
                        await asyncio.sleep(0.05)
                    await runner.wait_idle()
                    return time.perf_counter() - started

                elapsed = live.run(place_all(), timeout=max_seconds + 120)
            answered = sum(1 for r in runner.finished if r["outcome"] == "answered")
        return {
            "survey_calls": len(runner.finished),
            "survey_calls_answered": answered,
            "survey_seconds": round(elapsed, 1),
            "survey_concurrent_calls": workers,
            "survey_key_pressed_after_s": round(listen, 1),
            "survey_second_key_after_s": round(listen + follow, 1),
            "survey_calls_per_hour": round(len(runner.finished) / elapsed * 3600) if elapsed else None,
        }
    finally:
        ctx.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--due", type=int, default=100_000, help="due callbacks in the queue (claim timing)")
    parser.add_argument("--claims", type=int, default=200, help="claims timed")
    parser.add_argument("--calls", type=int, default=24, help="survey calls placed")
    parser.add_argument("--workers", type=int, default=4, help="media workers (= calls at once)")
    parser.add_argument("--max-seconds", type=float, default=600, help="upper bound of the calls phase")
    args = parser.parse_args(argv)
    if args.due < args.claims or args.claims < 1 or args.calls < 1 or args.workers < 1:
        parser.error("need due >= claims >= 1, calls >= 1, workers >= 1")
    settings = load_settings()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="callback-claims-") as folder:
        log(f"claims on SQLite with {args.due} due callbacks …")
        for key, value in bench_claims(
            settings, f"sqlite:///{folder}/claims.db", args.due, args.claims
        ).items():
            out[f"{key}_sqlite"] = value
    url = os.environ.get("HOTLINE_DATABASE_URL", "")
    if url.startswith("postgresql"):
        log(f"claims on PostgreSQL with {args.due} due callbacks …")
        for key, value in bench_claims(settings, settings.database_url, args.due, args.claims).items():
            out[f"{key}_postgresql"] = value
    log(f"{args.calls} survey calls through Kamailio with {args.workers} media workers …")
    out.update(bench_calls(settings, args.calls, args.workers, args.max_seconds))
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
