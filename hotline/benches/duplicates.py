"""Benchmark of duplicate suggestions at intake: `python -m hotline.benches.duplicates [--tickets N]`.

Fills the configured scratch database (HOTLINE_DATABASE_URL; refused if it holds tickets) with N open
tickets (default 100 000), all registered within the finder's window of days (the worst case: every
one is a candidate), placed in the gazetteer's communities and worded like the demo's requests. Then
asks the finder what an operator's console asks while a caller speaks, for calls drawn the same way:

- warm_s: the first pass over every community (the vectors of candidates not yet seen are made once;
  in service, each ticket's is made when it is registered);
- dense_ms: p50 and p99 of a suggestion with the sentence model, after the warm pass (the caller's
  words are embedded in each: they are new every time);
- lexical_ms: the same with the model off (character bigrams only): the baseline of the same run;
- candidates: the median number of tickets compared per call.

Last line: one JSON object with those figures, tickets and database.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from core import semantics
from dispatch.duplicates import DuplicateFinder
from hotline.benches import sla as sla_bench
from hotline.benches.analytics import COLUMNS, PlacedGenerator
from hotline.config import load_settings
from hotline.context import HotlineContext
from hotline.demo_history import REQUESTS

OPEN = {"state": "dispatched", "closed_at": None, "replied_at": None, "signed_at": None}


class OpenGenerator(PlacedGenerator):
    """The analytics benchmark's placed tickets, every one open and registered within `days`."""

    days = 7

    def rows(self, count: int) -> Iterator[tuple[Any, ...]]:
        for row in super().rows(count):
            values = dict(zip(COLUMNS, row, strict=True))
            created = self.now - timedelta(seconds=self.random.randrange(self.days * 86400))
            values.update(OPEN, created_at=created, updated_at=created, dispatched_at=created)
            yield tuple(values[c] for c in COLUMNS)


def calls(generator: OpenGenerator, count: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        _, _, word = rnd.choice(generator.places)
        text = rnd.choice(rnd.choice(REQUESTS)[1])
        out.append(text.format(place=word, n=rnd.randint(1, 30)))
    return out


def timed(finder: DuplicateFinder, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        started = time.perf_counter()
        finder.find(text, None, "13800000000")
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hotline.benches.duplicates", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    settings = load_settings()
    settings.sla.sweeps_enabled = False
    ctx = HotlineContext.from_settings(settings)
    base = sla_bench._prepare(ctx)
    generator = OpenGenerator(base.subs, base.departments, base.calendar, base.now, seed=12345)
    generator.days = settings.dispatch.duplicates.days
    generator.places = [
        (t.code, c.code, w) for t in ctx.gazetteer.towns for c in t.communities for w in c.words or [c.name]
    ]
    sla_bench.COLUMNS[:] = COLUMNS
    sla_bench._load(ctx, generator, args.tickets)
    encoder = semantics.encoder()
    if encoder is None:
        raise SystemExit(f"error: the sentence model is not available: {semantics.status().reason}")
    texts = calls(generator, args.calls)
    warm_calls = [f"{word}停水了" for _, _, word in generator.places]
    wanted = settings.dispatch.duplicates
    with ctx.unit_of_work() as session:
        dense = DuplicateFinder(session, ctx.gazetteer, wanted, ctx.clock, encoder)
        lexical = DuplicateFinder(session, ctx.gazetteer, wanted, ctx.clock, None)
        started = time.perf_counter()
        timed(dense, warm_calls)
        warm_s = time.perf_counter() - started
        gc.freeze()  # as `hotline serve` does once started
        dense_ms = timed(dense, texts)
        lexical_ms = timed(lexical, texts)
        candidates = [len(dense._candidates(ctx.gazetteer.locate(None, t), None, None)) for t in texts[:50]]
    result = {
        "tickets": args.tickets,
        "calls": len(texts),
        "warm_s": round(warm_s, 1),
        "dense_ms": {"p50": percentile(dense_ms, 0.5), "p99": percentile(dense_ms, 0.99)},
        "lexical_ms": {"p50": percentile(lexical_ms, 0.5), "p99": percentile(lexical_ms, 0.99)},
        "candidates": int(statistics.median(candidates)),
        "database": ctx.engine.dialect.name,
    }
    ctx.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
