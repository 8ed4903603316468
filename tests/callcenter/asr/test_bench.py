"""The speech benchmark runs end to end with the synthetic model and prints its figures as the last line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.callcenter.asr.conftest import SENTENCE, write_wav
from tests.conftest import REPO_ROOT


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.benches.asr", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_bench_prints_the_pipeline_figures_and_the_cer(
    tiny_model: Path, speech: dict[int, np.ndarray], tmp_path: Path
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    write_wav(refs / "one.wav", 8000, speech[8000])
    (refs / "one.txt").write_text(SENTENCE, encoding="utf-8")
    done = _bench("--model", str(tiny_model), "--refs", str(refs), "--live-calls", "2")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rtf_one_stream"] > 0 and figures["live_cpu_per_stream_pct_of_core"] > 0
    assert figures["live_streaming"] == 2 and figures["live_refused"] == 0
    assert figures["hangup_to_stored_s"] > 0 and figures["refs_files"] == 1
    assert figures["cer_without_correction"] >= 0 and figures["cer_with_correction"] >= 0


def test_bench_refuses_a_missing_model_folder(tmp_path: Path) -> None:
    done = _bench("--model", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no such model folder" in done.stderr
