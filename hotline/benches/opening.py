"""The opening statement on screen (智能填单), end to end: `python -m hotline.benches.opening [--calls 4]`.

A real `hotline serve` (inline, SQLite, demo data, the packaged Whisper model) with Kamailio and its
media workers; a SIPp seat phone registered as 1001 that answers; the operator op01 signed in at seat
1001 in Chromium; citizens (SIPp) whose audio is a real Mandarin clip as a telephone carries it
(`tests/callcenter/asr/data/mandarin`), said a few seconds after the seat answered. For each call the
page records when 诉求内容 was filled, and the live recogniser says when the caller's speech ended (the
wall clock of this machine, estimated from the real-time stream): the difference is what an operator
waits after the caller pauses, through the recogniser, Whisper, the knowledge base and the router, the
event bus, the page's event stream and its script. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from callcenter.testing.harness import free_port_block, loopback_settings, wait_for
from callcenter.testing.sipkit import SeatPhone, citizen, pcap, running

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT / "tests" / "callcenter" / "asr" / "data" / "mandarin"
DEFAULT_CLIPS = ("clip_006.wav", "s2_034.wav", "s2_025.wav", "clip_001.wav")
LEAD_IN = 4.0  # seconds of silence after the answer: the seat answers, the operator greets
PASSWORD = "hotline-demo"


def _config(folder: Path) -> tuple[Path, int]:
    cc = loopback_settings(2, ["1001"], ring_timeout_seconds=10, wrap_up_seconds=0)
    lines = [
        "[database]", f'url = "sqlite:///{folder / "hotline.db"}"',
        "[auth]", 'session_secret = "bench-opening-secret-0123456789abcdef"',
        "[dispatch]", f'category_tree = "{ROOT / "dispatch" / "category_tree.toml"}"',
        "[callbacks]", "enabled = false",
        "[callcenter]", "enabled = true", f"sip_port = {cc.sip_port}",
        f"worker_sip_port_base = {cc.worker_sip_port_base}", f"workers = {cc.workers}",
        f"rtp_port_base = {cc.rtp_port_base}", f"rtp_ports_per_worker = {cc.rtp_ports_per_worker}",
        'seats = ["1001"]', "ring_timeout_seconds = 10", "wrap_up_seconds = 0",
        f'runtime_dir = "{folder / "run"}"', f'recordings_dir = "{folder / "recordings"}"',
        f'prompts_dir = "{folder / "prompts"}"',
        "[callcenter.asr]", 'engine = "whisper"', f'whisper_folder = "{folder / "whisper"}"',
        "opening_statement = true", "live_streams = 2", "whisper_beam_size = 5",
    ]  # fmt: skip
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, cc.sip_port


def _hotline(config: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOTLINE_CONFIG": str(config)}
    env.pop("HOTLINE_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "hotline.cli", *args], env=env, cwd=ROOT, **popen)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as answer:
            body = json.load(answer)
    except OSError:
        return False
    return body.get("callcenter") == "on" and body.get("transcription") == "on"


WATCH = """() => {
  // before each call: a fresh record and an empty form; the handler and the poll are set up once
  const box = document.getElementById("content");
  window.__filled = [];
  window.__openings = [];
  window.__lastOpening = null;
  box.value = "";
  delete box.dataset.typed;
  delete box.dataset.opening;
  if (window.__watching) return;
  window.__watching = true;
  let last = box.value;
  Hotline.on("transcript.opening", (p) => { window.__lastOpening = p; window.__openings.push(p); });
  setInterval(() => {
    if (box.value !== last) { last = box.value; if (last) window.__filled.push([Date.now() / 1000, last]); }
  }, 10);
}"""


def measure(calls: int, clips: list[str]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-opening-"))
    web_port = free_port_block(1, start=48000)
    config, sip_port = _config(folder)
    log = open(folder / "serve.log", "wb")  # noqa: SIM115
    for step in (["init-db"], ["demo-data", "--history-days", "0"]):
        _hotline(config, *step, stdout=log, stderr=log).wait(300)
    serve = _hotline(config, "serve", "--host", "127.0.0.1", "--port", str(web_port), stdout=log, stderr=log)
    kamailio = f"127.0.0.1:{sip_port}"
    results: list[dict[str, Any]] = []
    try:
        wait_for(lambda: _healthy(web_port), 180, "hotline serve with speech to start")
        phone = SeatPhone(
            "1001", kamailio, calls=calls, timeout=60.0 * (calls + 2), pcaps={"audio": pcap("sil:1")}
        )
        with sync_playwright() as play, running(phone):
            browser = play.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(base_url=f"http://127.0.0.1:{web_port}")
            page.goto("/login")
            page.fill("input[name=username]", "op01")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/console")
            page.select_option("#seat-choice", "1001")
            page.click("#sign-in")
            _ready(page)
            for n in range(calls):
                results.append(_one_call(page, kamailio, clips[n % len(clips)]))
            # and a caller who speaks while waiting in the queue (the seat on 小休 until they paused)
            results.append(_one_call(page, kamailio, clips[0], in_queue=True))
            browser.close()
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()
    queued = [r for r in results if r.get("said_in_queue")]
    results = [r for r in results if not r.get("said_in_queue")]
    delays = [r["on_screen_seconds"] for r in results if r.get("on_screen_seconds") is not None]
    out = {
        "calls": calls,
        "shown": len(delays),
        "on_screen_seconds": {
            "median": round(statistics.median(delays), 3) if delays else None,
            "max": round(max(delays), 3) if delays else None,
        },
        "per_call": results,
        # said in the queue: shown when the call reaches the seat (the delay is then the queue's)
        "said_in_queue_shown": bool(queued and queued[0].get("text")),
        "log": str(folder / "serve.log"),
    }
    if delays:
        shutil.rmtree(folder, ignore_errors=True)
        out.pop("log")
    return out


def _seconds(path: Path) -> float:
    from callcenter.recording import wav_seconds

    return wav_seconds(path)


def _ready(page: Any) -> None:
    try:
        page.wait_for_selector("#seat-state.ready", timeout=60_000)
    except Exception:
        badge = page.eval_on_selector("#seat-state", "b => b.className + ' ' + b.textContent")
        server = page.evaluate("() => fetch('/api/seats').then((r) => r.json())")
        raise SystemExit(f"the seat did not become ready: page {badge}, server {server}") from None


def _one_call(page: Any, kamailio: str, clip: str, in_queue: bool = False) -> dict[str, Any]:
    _ready(page)
    page.evaluate(WATCH)
    if in_queue:
        page.click("[data-seat-state=break]")
        page.wait_for_selector("#seat-state.break", timeout=10_000)
    seconds = _seconds(CLIPS / clip)
    audio = pcap(f"sil:{LEAD_IN}", f"wav:{CLIPS / clip}", "sil:6", codec="PCMA")
    # the citizen hangs up once the clip and the pause after it are through
    hold = LEAD_IN + seconds + (25 if in_queue else 8)
    caller = citizen(kamailio, hold_ms=int(hold * 1000), pcaps={"audio": audio})
    filled_at, text, opening = None, None, None
    with caller:
        if in_queue:  # the statement is made while nobody can take the call; then the seat is free
            # (a console hears only its own calls' speech: nothing to wait for on the page)
            page.wait_for_timeout((LEAD_IN + seconds + 4) * 1000)
            page.click("[data-seat-state=ready]")
        try:
            page.wait_for_function("() => window.__filled && window.__filled.length > 0", timeout=60_000)
            filled_at, text = page.evaluate("() => window.__filled[0]")
            opening = page.evaluate("() => window.__lastOpening || null")
        except Exception:  # no text on screen: said in the result, the next call goes on
            pass
        caller.wait(120)
    if filled_at is None:
        seen = page.evaluate("() => (window.__openings || []).map((p) => p.text)")
        return {"clip": clip, "on_screen_seconds": None, "openings_published": seen}
    ended = (opening or {}).get("speech_ended_at")
    return {
        "clip": clip,
        "said_in_queue": in_queue,
        "text": text,
        "event_delay_seconds": (opening or {}).get("delay_seconds"),
        "on_screen_seconds": round(filled_at - ended, 3) if ended else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.benches.opening", description=__doc__)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--clips", nargs="*", default=list(DEFAULT_CLIPS))
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.calls, args.clips), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
