"""The benchmark command runs end to end on tiny numbers and prints its JSON as the last line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from hotline.config import REPO_ROOT

NEEDED = ("kamailio", "sipp", "espeak-ng", "sox")
missing = [tool for tool in NEEDED if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin"))]


@pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (make test installs them)")
def test_benchmark_prints_claim_times_and_survey_calls_per_hour() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "hotline.benches.callbacks", "--due", "300", "--claims", "20"]
    command += ["--calls", "2", "--workers", "2", "--max-seconds", "120"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["due_callbacks_sqlite"] == 300
    assert 0 < figures["claim_ms_median_sqlite"] <= figures["claim_ms_p95_sqlite"]
    assert (figures["survey_calls"], figures["survey_calls_answered"]) == (2, 2)
    # each call lasts at least the prompts the citizen listens to before pressing 1
    assert figures["survey_key_pressed_after_s"] > 10
    assert 0 < figures["survey_calls_per_hour"] < 2 * 3600 / figures["survey_key_pressed_after_s"]


def test_benchmark_refuses_bad_arguments() -> None:
    command = [sys.executable, "-m", "hotline.benches.callbacks", "--due", "10", "--claims", "20"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "due >= claims" in done.stderr
