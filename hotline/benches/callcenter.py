"""Call-centre benchmark: Kamailio, the media workers and the controller on loopback, driven by SIPp.

    python -m hotline.benches.callcenter [--workers 72] [--seats 24] [--hold 60] [--rates 20,30,40]
        [--database-url URL] [--scenario load|flood|hosts]

load (default): phase 1 holds every seat talking and the rest of the callers queued for `--hold`
seconds, with audio both ways and every call recorded. Phase 2 places short calls at each set-up rate
for `--rate-seconds` and checks that every call reached the database.

flood: `--flood` INVITEs (1000) in 5 s whose answer is never acknowledged, once from one source and
once from ten loopback addresses, while legitimate callers from another address call at 4 a second
during the burst and after it: worker_aborts (media workers that died), answered_during_share (the
legitimate calls answered during the burst), recovery_s (from the end of the burst until a new call
is answered).

hosts: the namespace drill of split mode over machines (hotline/benches/hosts.py: own options).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from callcenter.models import CallRecord, SeatState
from callcenter.recording import channel_levels
from callcenter.service import SeatService
from callcenter.testing.harness import LiveCallCentre, loopback_settings
from callcenter.testing.sipkit import SeatPhone, Sipp, citizen, citizen_numbers, pcap
from core.clock import SystemClock
from core.migrate import upgrade
from hotline.config import parse_settings
from hotline.context import HotlineContext

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def centre_pids(live: LiveCallCentre) -> list[int]:
    pool, kamailio = live.centre.pool, live.centre.kamailio
    pids = [os.getpid()]
    pids += [p.pid for p in pool.processes.values() if p.returncode is None] if pool else []
    if kamailio is not None and kamailio.pid:
        # the reaper, and Kamailio's own process group under it
        pids += [kamailio.pid, *kamailio.kamailio_pids()]
    return pids


def recording_problem(record: CallRecord) -> str | None:
    """None when the WAV exists, lasts as long as the call was up, and the citizen's channel has audio."""
    if not record.recording_path or not Path(record.recording_path).exists() or record.ended_at is None:
        return f"{record.uid}: no recording"
    with wave.open(record.recording_path, "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    expected = (record.ended_at - record.offered_at).total_seconds()
    if abs(seconds - expected) >= 1.5:
        return f"{record.uid}: {seconds:.2f} s of audio for a call of {expected:.2f} s"
    level = channel_levels(Path(record.recording_path))[0]
    return None if level > -40 else f"{record.uid}: citizen channel at {level:.1f} dBFS"


def sign_in_all(live: LiveCallCentre, extensions: list[str]) -> None:
    with live.ctx.unit_of_work() as session:
        seats = SeatService(session, live.ctx.clock)
        for extension in extensions:
            if seats.get(extension).state != "ready":
                seats.change(extension, SeatState.READY)
    live.call(live.controller.seat_changed)


def hold_phase(live: LiveCallCentre, seats: list[str], callers: int, hold: float) -> dict[str, Any]:
    registrar = f"127.0.0.1:{live.cc.sip_port}"
    voice = pcap(f"tone:600:{hold:g}")
    phones = [SeatPhone(ext, registrar, calls=1, timeout=hold + 60, pcaps={"audio": voice}) for ext in seats]
    for phone in phones:
        phone.start()
    sign_in_all(live, seats)
    before = len(live.records())
    crowd = citizen(
        registrar,
        hold_ms=int(hold * 1000),
        calls=callers,
        rate=min(callers, 30),
        timeout=hold + 90,
        callers=citizen_numbers(callers, 13500000000),
        pcaps={"audio": pcap(f"speech:{hold:g}")},
    )
    crowd.start()
    peak, cpu0, t0 = 0, None, None
    rss = 0.0
    deadline = time.monotonic() + hold + 60
    while crowd.process and crowd.process.poll() is None and time.monotonic() < deadline:
        calls = len(live.controller.calls)
        peak = max(peak, calls)
        if calls >= callers and cpu0 is None:  # everyone is in: start measuring the steady state
            cpu0, t0 = cpu_seconds(centre_pids(live)), time.monotonic()
            rss = rss_mb(centre_pids(live))
        time.sleep(0.5)
    cpu1, t1 = cpu_seconds(centre_pids(live)), time.monotonic()
    result = crowd.wait(30)
    for phone in phones:
        phone.stop()
    live.wait_for(lambda: not live.controller.calls, 30, "every call to end")
    records = live.records()[before:]
    busy_share = (cpu1 - cpu0) / (t1 - t0) * 100 if cpu0 is not None and t0 and t1 > t0 else None
    problems = [p for p in map(recording_problem, records) if p]
    failed_records = sum(1 for r in records if r.outcome == "failed" or r.ended_at is None)
    return {
        "concurrent_calls": peak,
        "answered": sum(1 for r in records if r.answered_at is not None),
        "failed_calls": result.failed + failed_records + max(0, callers - len(records)),
        "cpu_total_pct": round(busy_share, 1) if busy_share is not None else None,
        "cpu_per_call_pct": round(busy_share / peak, 3) if busy_share is not None and peak else None,
        "rss_mb_total": round(rss, 1),
        "recordings_intact": len(records) == callers and not problems,
        "recordings_checked": len(records),
        "recording_problems": problems[:5],
    }


def settle(live: LiveCallCentre, seconds: float = 30) -> list[str]:
    """Wait for every call to end; name those still up after `seconds` (then hang them up)."""
    try:
        live.wait_for(lambda: not live.controller.calls, seconds, "every call to end")
        return []
    except AssertionError:
        calls = list(live.controller.calls.values())
        for call in calls:
            live.call(live.controller.hangup, call.uid, "system")
        return [f"{c.uid} {c.state} seat={c.seat}" for c in calls]


def rate_phase(live: LiveCallCentre, rate: float, seconds: float) -> dict[str, Any]:
    registrar = f"127.0.0.1:{live.cc.sip_port}"
    calls = int(rate * seconds)
    before = len(live.records())
    started = time.monotonic()
    crowd = citizen(
        registrar,
        hold_ms=1000,
        calls=calls,
        rate=rate,
        limit=int(rate * 4) + 10,
        timeout=seconds + 60,
        callers=citizen_numbers(calls, 13600000000),
    )
    crowd.start()
    result = crowd.wait(seconds + 90)
    elapsed = time.monotonic() - started
    stuck = settle(live)
    records = live.records()[before:]
    stored = sum(1 for r in records if r.ended_at is not None and r.outcome != "failed")
    return {
        "target_cps": rate,
        "calls": calls,
        "successful": result.successful,
        "failed": result.failed,
        "stored_in_database": stored,
        "achieved_cps": round(result.successful / elapsed, 1),
        "still_up_30s_after": stuck,
        "ok": result.failed == 0 and stored == calls and not stuck,
    }


def flood_phase(live: LiveCallCentre, invites: int, sources: int) -> dict[str, Any]:
    """A burst of unacknowledged INVITEs from `sources` addresses, legitimate calls beside it."""
    registrar = f"127.0.0.1:{live.cc.sip_port}"
    pool = live.centre.pool
    assert pool is not None
    restarts, before = pool.restarts, len(live.records())
    per_source, seconds = invites // sources, 5.0
    floods = [
        Sipp(
            "citizen_no_ack", remote=registrar, calls=per_source, limit=per_source, rate=per_source / seconds,
            timeout=seconds + 30, extra_args=["-nd", "-i", f"127.0.0.{10 + n}", "-mi", f"127.0.0.{10 + n}"],
            callers=citizen_numbers(per_source, 15000000000 + n * per_source),
        )
        for n in range(sources)
    ]  # fmt: skip
    legit_calls = int(4 * seconds)
    legit = citizen(
        registrar, hold_ms=1000, calls=legit_calls, rate=4, limit=legit_calls, timeout=seconds + 40,
        extra_args=["-i", "127.0.0.200", "-mi", "127.0.0.200"],
        callers=citizen_numbers(legit_calls, 13700000000),
    )  # fmt: skip
    for flood in floods:
        flood.start()
    legit.start()
    for flood in floods:
        flood.wait(seconds + 60)
    burst_end = time.monotonic()
    during = legit.wait(seconds + 60)
    recovery = None
    while recovery is None and time.monotonic() - burst_end < 60:
        probe = citizen(
            registrar, hold_ms=300, timeout=10, extra_args=["-i", "127.0.0.201", "-mi", "127.0.0.201"]
        )
        with probe:
            if probe.wait().ok:
                recovery = time.monotonic() - burst_end
    stuck = settle(live, 40)
    died = sum(1 for r in live.records()[before:] if (r.hangup_cause or "").startswith("media worker died"))
    return {
        "sources": sources,
        "invites": per_source * sources,
        "worker_aborts": pool.restarts - restarts,
        "calls_cut_by_a_dead_worker": died,
        "legit_calls_during": legit_calls,
        "answered_during_share": round(during.successful / legit_calls, 3),
        "recovery_s": round(recovery, 2) if recovery is not None else None,
        "still_up_40s_after": stuck,
    }


def make_context(folder: Path, database_url: str | None, cc_values: dict[str, Any]) -> HotlineContext:
    url = database_url or f"sqlite:///{folder / 'bench.db'}"
    settings = parse_settings({"database": {"url": url}, "callcenter": cc_values}, "bench", folder)
    ctx = HotlineContext.from_settings(settings, clock=SystemClock(settings.hotline.timezone))
    upgrade(ctx.engine)
    return ctx


def main(argv: list[str] | None = None) -> int:
    if "hosts" in (argv if argv is not None else sys.argv[1:]):  # the namespace drill has its own options
        from hotline.benches.hosts import main as hosts_drill

        return hosts_drill(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=72)
    parser.add_argument("--seats", type=int, default=24)
    parser.add_argument("--callers", type=int, default=None, help="phase 1 callers (default: workers)")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds every phase-1 call lasts")
    parser.add_argument("--rates", default="20,30,40", help="phase-2 set-up rates (calls per second)")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--scenario", choices=["load", "flood", "hosts"], default="load")
    parser.add_argument("--flood", type=int, default=1000, help="unacknowledged INVITEs of a burst")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="callcenter-bench-"))
    extensions = [str(2001 + n) for n in range(args.seats)]
    cc = loopback_settings(
        args.workers, extensions, ring_timeout_seconds=10, wrap_up_seconds=0.5, max_queue_length=500,
        max_wait_seconds=3600, recordings_dir=folder / "recordings", prompts_dir=folder / "prompts",
        runtime_dir=folder / "run",
    )  # fmt: skip
    ctx = make_context(folder, args.database_url, cc.model_dump(by_alias=True, mode="json"))
    figures: dict[str, Any] = {
        "workers": args.workers,
        "seats": args.seats,
        "database": ctx.engine.dialect.name,
    }
    try:
        started = time.monotonic()
        with LiveCallCentre(ctx, ctx.settings.callcenter) as live:
            figures["startup_seconds"] = round(time.monotonic() - started, 1)
            if args.scenario == "flood":
                for sources in (1, 10):
                    row = flood_phase(live, args.flood, sources)
                    print(json.dumps({"phase": "flood", **row}), flush=True)
                    figures[f"flood_{sources}_sources"] = row
                figures["worker_restarts"] = live.centre.pool.restarts if live.centre.pool else None
            else:
                figures.update(hold_phase(live, extensions, args.callers or args.workers, args.hold))
                print(json.dumps({"phase": "hold", **figures}, ensure_ascii=False), flush=True)
                rates = [rate_phase(live, float(r), args.rate_seconds) for r in args.rates.split(",")]
                for row in rates:
                    print(json.dumps({"phase": "setup_rate", **row}), flush=True)
                good = [r["achieved_cps"] for r in rates if r["ok"]]
                figures["setup_rate_cps"] = max(good) if good else 0.0
                figures["setup_rate_ceiling_tried"] = max(float(r) for r in args.rates.split(","))
                figures["worker_restarts"] = live.centre.pool.restarts if live.centre.pool else None
    finally:
        ctx.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
