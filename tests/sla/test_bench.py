"""The benchmark command runs end to end on a small database and prints its JSON line last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_bench_prints_figures_as_last_line(tmp_path: Path) -> None:
    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'bench.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.sla", "--tickets", "3000"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["tickets"] == 3000 and figures["database"] == "sqlite"
    assert figures["insert_rows_per_s"] > 0 and figures["sweep_s"] > 0 and figures["kpi_month_s"] > 0
    # A second run refuses to pile synthetic tickets onto a database that has some.
    again = subprocess.run(
        [sys.executable, "-m", "hotline.benches.sla", "--tickets", "10"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode != 0 and "already holds tickets" in again.stderr


def test_analytics_bench_finds_the_planted_spike_and_makes_the_report(tmp_path: Path) -> None:
    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'analytics.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.analytics", "--tickets", "4000"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["tickets"] == 4000 and figures["month_tickets"] > 100
    assert figures["alerts"] >= 1 and "月度分析报告" in done.stderr  # the spike, and both files made
    assert figures["hotspot_sweep_s"] > 0 and figures["report_s"] > 0


def test_duplicates_bench_times_suggestions_with_and_without_the_model(tmp_path: Path) -> None:
    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'duplicates.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "hotline.benches.duplicates", "--tickets", "1500", "--calls", "20"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["tickets"] == 1500 and figures["calls"] == 20 and figures["candidates"] > 10
    assert figures["dense_ms"]["p99"] >= figures["dense_ms"]["p50"] > 0
    assert figures["lexical_ms"]["p50"] > 0
