"""Nothing twice, with real OS processes: two processes claiming from the same callback queue at the
same instant never take the same attempt, and a process killed mid-call leaves its claim to the stale
rule (the attempt counts as interrupted and is never placed again). On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from core.clock import ManualClock
from dispatch.callbacks.models import Callback, CallbackAttempt
from dispatch.callbacks.service import callbacks_of
from hotline.benches.callbacks import fill_replied_tickets
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9

# A claiming process: waits for a common start time, then claims until nothing is due, printing each
# claim as soon as it is committed; `hold` seconds after each claim stand for the call.
CLAIMER = """
import json, sys, time
from core.clock import ManualClock
from hotline.config import parse_settings
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9
from dispatch.callbacks.service import callbacks_of
from datetime import datetime
url, name, start_at, hold, now = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
clock = ManualClock(datetime.fromisoformat(now))
ctx = HotlineContext.from_settings(parse_settings({"database": {"url": url}}), clock=clock)
while time.time() < start_at:
    time.sleep(0.001)
while True:
    with ctx.unit_of_work() as session:
        claim = callbacks_of(ctx, session).claim_next(name)
    if claim is None:
        break
    print(json.dumps([claim.callback_id, claim.attempt]), flush=True)
    time.sleep(hold)
"""


def claimer(
    url: str, name: str, start_at: float, hold: float = 0.0, now: datetime = MONDAY_9
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-c", CLAIMER, url, name, str(start_at), str(hold), now.isoformat()]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def claims_of(process: subprocess.Popen[str]) -> list[tuple[int, int]]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return [tuple(json.loads(line)) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def test_two_processes_never_claim_the_same_attempt(ctx: HotlineContext, db_url: str) -> None:
    fill_replied_tickets(ctx, 300)
    with ctx.unit_of_work() as session:
        assert callbacks_of(ctx, session).enqueue_replied() == 300
    start_at = time.time() + 4  # both have imported everything and wait for the same instant
    first, second = claimer(db_url, "proc-1", start_at), claimer(db_url, "proc-2", start_at)
    a, b = claims_of(first), claims_of(second)
    assert a and b, f"both processes should have claimed some ({len(a)}, {len(b)})"
    assert not {cb for cb, _ in a} & {cb for cb, _ in b}
    assert len(a) + len(b) == 300
    with ctx.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(CallbackAttempt)) == 300
        assert set(session.scalars(select(Callback.attempts))) == {1}
        grouped = select(Callback.claimed_by, func.count()).group_by(Callback.claimed_by)
        by_claimer = {name: count for name, count in session.execute(grouped)}
    assert by_claimer == {"proc-1": len(a), "proc-2": len(b)}


def test_a_killed_process_claim_is_never_dialled_again_after_a_restart(
    ctx: HotlineContext, db_url: str
) -> None:
    assert isinstance(ctx.clock, ManualClock)
    fill_replied_tickets(ctx, 5)
    with ctx.unit_of_work() as session:
        callbacks_of(ctx, session).enqueue_replied()
    dying = claimer(db_url, "dies", time.time(), hold=60)  # claims one, then "dials" for a minute
    assert dying.stdout is not None
    line = dying.stdout.readline()
    os.kill(dying.pid, signal.SIGKILL)
    dying.wait(10)
    lost = tuple(json.loads(line))
    # the restarted process takes every other callback, not the one the dead process held
    restarted = claims_of(claimer(db_url, "restarted", time.time()))
    assert len(restarted) == 4 and lost[0] not in {cb for cb, _ in restarted}
    with ctx.unit_of_work() as session:
        held = session.get(Callback, lost[0])
        assert held is not None and (held.state, held.claimed_by) == ("calling", "dies")
    ctx.clock.advance(timedelta(minutes=16))
    with ctx.unit_of_work() as session:
        # every claim still open is stale now (the claimers here never report back)
        recovered = {c.id for c in callbacks_of(ctx, session).recover_stale()}
    assert recovered == {lost[0]} | {cb for cb, _ in restarted}
    ctx.clock.advance(timedelta(minutes=60))
    again = claims_of(claimer(db_url, "later", time.time(), now=ctx.clock.now()))
    assert sorted(again) == sorted((cb, 2) for cb in recovered)  # attempt 1 is never placed again
    with ctx.unit_of_work() as session:
        outcomes = [a.outcome for a in callbacks_of(ctx, session).attempts(lost[0])]
    assert outcomes == ["interrupted", "calling"]
