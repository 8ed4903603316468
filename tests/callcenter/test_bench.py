"""The call-centre benchmark runs end to end on a small pool and prints its figures as the last line."""

from __future__ import annotations

import json
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
