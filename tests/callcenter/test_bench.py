"""The call-centre benchmark runs end to end on a small pool and prints its figures as the last line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.callcenter.test_calls import missing
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (make test installs them)")


def test_bench_holds_calls_records_them_and_measures_the_setup_rate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.callcenter", "--workers", "4", "--seats", "2", "--hold", "3",
         "--rates", "2", "--rate-seconds", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines() if line.startswith("{")]
    figures = lines[-1]
    assert figures["concurrent_calls"] == 4 and figures["answered"] == 2 and figures["failed_calls"] == 0
    assert figures["recordings_intact"] and figures["recordings_checked"] == 4
    assert figures["rss_mb_total"] > 0 and figures["cpu_per_call_pct"] > 0
    rate_phase = next(line for line in lines if line.get("phase") == "setup_rate")
    assert rate_phase["ok"] and rate_phase["stored_in_database"] == rate_phase["calls"] == 4


def namespaces_missing() -> str | None:
    """Why network namespaces cannot be made here (not root, no iproute2, no permission), or None."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "the drill needs root and iproute2 (ip netns)"
    probe = f"hl-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None if made.returncode == 0 else f"ip netns add refused: {made.stderr.strip()}"


@pytest.mark.skipif(bool(namespaces_missing()), reason=str(namespaces_missing()))
def test_the_hosts_drill_in_namespaces_loses_nothing(pg_database: str) -> None:
    """The namespace drill, small: two media hosts of three workers, four citizens, one seat."""
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.callcenter", "--scenario", "hosts", "--workers-per-host", "3",
         "--calls", "4", "--seats", "1", "--hold", "10", "--settle", "6"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["concurrent_calls"] == 4
    assert figures["takeover_s"] <= 5 and figures["recovery_s"] is not None and figures["recovery_s"] <= 10
    assert figures["surviving_calls"] >= 1 and figures["surviving_calls_failed"] == 0
    assert figures["cut_calls"] >= 2 and figures["cut_calls_closed"] == figures["cut_calls"]
    assert figures["lost_records"] == 0 and figures["lost_recordings"] == 0


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/chromium"), reason="needs Debian's chromium (make test installs it)"
)
def test_the_opening_statement_bench_fills_the_form_in_a_browser() -> None:
    """The end-to-end opening-statement benchmark, one call and one caller who speaks in the queue:
    the statement reaches the operator's 诉求内容 and the delay is measured (its size is the
    benchmark's business, not this test's)."""
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.opening", "--calls", "1", "--clips", "clip_006.wav"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["shown"] == 1, figures
    call = figures["per_call"][0]
    assert call["text"] and call["on_screen_seconds"] is not None and call["on_screen_seconds"] > 0
    assert figures["said_in_queue_shown"], figures
