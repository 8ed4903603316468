"""Train the knowledge-base ranker: `python -m knowledge_base.calibrate [--set KB QUERIES ...]`.

For every utterance of the tuning sets (a knowledge base and utterances with the expected entry, or
none) the matcher's candidates and their features are collected; a logistic regression learns which
candidate is the expected entry. The confident threshold is chosen on predictions made without the
utterance's own set (leave one set out), as the lowest at which confident answers are right at least
MIN_PRECISION of the time and at most MAX_FALSE_POSITIVE of the utterances without an answer get one;
the "probably answers it" threshold of dispatch.triage as the one that best separates utterances the
first hit answers from those no entry answers. Writes
knowledge_base/ranker.json with both models (with and without the embedding model) and the figures.

Default sets: the four tuning sets of knowledge_base/tuning (written for training, by other hands
than the evaluation set), the project's earlier held-out batches in tests/knowledge_base/data (1-4,
tuned on since this model exists), heldout5 to heldout8 (they judged earlier steps and were looked at
then) and, when it is present, ../shared/samples.

Beside ranker.json it writes precedents.npz: the embedded utterances of those sets (not the shared
samples) and of the router's seed corpora, with whether they were answered (see ranker.Precedents).
Never pass the evaluation set (tests/knowledge_base/data/heldout9_*) here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core import chinese, semantics
from knowledge_base.bench import load_jsonl
from knowledge_base.matcher import KnowledgeBase
from knowledge_base.ranker import (
    HYBRID_FEATURES,
    LEXICAL_FEATURES,
    PRECEDENTS_FILE,
    RANKER_FILE,
    LinearModel,
    Models,
    Precedents,
    QuestionModel,
    with_pairs,
)

MIN_PRECISION = 0.97
MAX_FALSE_POSITIVE = 0.03
# Regularisation of the ranker over the features and their pairwise products, chosen on the
# leave-one-set-out predictions of the tuning sets (coverage at the precision target). Without
# heldout5/6: plain features at C 1: 0.41; pairs at C 0.03 / 0.1 / 0.3: 0.62 / 0.67 / 0.61. With them
# (the default sets now): 0.456; 0.502 / 0.487 / 0.482.
PAIRS_C = 0.1
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "knowledge_base" / "data"
SHARED = ROOT.parent / "shared" / "samples"
TUNING = Path(__file__).resolve().parent / "tuning"
DEFAULT_SETS = [
    (TUNING / "t1_kb.jsonl", TUNING / "t1_queries.jsonl"),
    (TUNING / "t2_kb.jsonl", TUNING / "t2_queries.jsonl"),
    (TUNING / "t3_kb.jsonl", TUNING / "t3_queries.jsonl"),
    (TUNING / "t4_kb.jsonl", TUNING / "t4_queries.jsonl"),
    (DATA / "heldout_kb.jsonl", DATA / "heldout_queries.jsonl"),
    (DATA / "heldout_kb.jsonl", DATA / "heldout_queries_2.jsonl"),
    (DATA / "heldout3_kb.jsonl", DATA / "heldout3_queries.jsonl"),
    (DATA / "heldout4_kb.jsonl", DATA / "heldout4_queries.jsonl"),
    # judged issue 16's earlier steps and were looked at while doing so; training data since heldout7
    (DATA / "heldout5_kb.jsonl", DATA / "heldout5_queries.jsonl"),
    (DATA / "heldout6_kb.jsonl", DATA / "heldout6_queries.jsonl"),
    # judged the step before the precedents (2026-12-07), and checked them before joining
    (DATA / "heldout7_kb.jsonl", DATA / "heldout7_queries.jsonl"),
    # judged the precedents (2026-12-08)
    (DATA / "heldout8_kb.jsonl", DATA / "heldout8_queries.jsonl"),
    (SHARED / "kb_sample.jsonl", SHARED / "queries_sample.jsonl"),
]


# Utterances of the router's seed corpus (dispatch) also teach the question model what a standard
# question sounds like (简单咨询) and what does not (everything else).
SEED_CORPORA = tuple(sorted((ROOT / "dispatch" / "models").glob("seed_corpus*.jsonl")))  # as the router


@dataclass
class Utterance:
    text: str
    group: int  # which tuning set
    rows: dict[str, np.ndarray]  # feature -> value per candidate
    label: np.ndarray  # 1 for the expected entry
    unmet: np.ndarray  # candidate has an unmet need (never confident)
    answerable: bool


def collect(sets: list[tuple[Path, Path]], encoder: semantics.Encoder | None) -> list[Utterance]:
    out: list[Utterance] = []
    placeholder = _placeholder()
    for group, (kb_path, queries_path) in enumerate(sets):
        kb = KnowledgeBase.from_jsonl(kb_path, encoder=encoder, ranker=placeholder)
        for q in load_jsonl(queries_path):
            found = kb.candidates(q["text"])
            expected = q.get("expected_kb_id")
            if found is None:
                out.append(Utterance(q["text"], group, {}, np.zeros(0), np.zeros(0, bool), bool(expected)))
                continue
            ids = [kb.entries[i].id for i in found.index]
            label = np.array([float(i == expected) for i in ids])
            unmet = np.array([bool(u) for u in found.unmet])
            out.append(Utterance(q["text"], group, found.features, label, unmet, bool(expected)))
    return out


def _placeholder() -> Models:
    """A model of zeros, so the matcher can be built before any model exists."""

    def zero(features: tuple[str, ...]) -> LinearModel:
        n = len(features)
        return LinearModel(features, np.zeros(n), np.ones(n), np.zeros(n), 0.0, 1.0, 1.0)

    return Models(zero(HYBRID_FEATURES), zero(LEXICAL_FEATURES), None)


def fit_question(
    utterances: list[Utterance], encoder: semantics.Encoder, skip_group: int | None = None
) -> QuestionModel:
    from sklearn.linear_model import LogisticRegression

    seed = [row for path in SEED_CORPORA for row in load_jsonl(path)]
    texts = [u.text for u in utterances if u.group != skip_group] + [r["text"] for r in seed]
    labels = [u.answerable for u in utterances if u.group != skip_group]
    labels += [r.get("category") == "简单咨询" for r in seed]
    x = encoder.queries([chinese.normalise(t) for t in texts])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x, labels)
    return QuestionModel(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


def add_question_feature(utterances: list[Utterance], encoder: semantics.Encoder) -> QuestionModel:
    """Each utterance's `asks` feature, predicted by a question model that did not see its set."""
    vectors = encoder.queries([chinese.normalise(u.text) for u in utterances])
    for g in sorted({u.group for u in utterances}):
        model = fit_question(utterances, encoder, skip_group=g)
        for u, v in zip(utterances, vectors, strict=True):
            if u.group == g and len(u.label):
                u.rows["asks"] = np.full(len(u.label), model.probability(v))
    return fit_question(utterances, encoder)


def precedent_rows(sets: list[tuple[Path, Path]]) -> tuple[list[str], list[float], list[str]]:
    """Texts, whether answered, and source knowledge base of the shipped precedents: the tuning sets'
    utterances (not the shared samples, which stay outside the project) and the router's seed corpora
    (简单咨询 counts as answered). All of it is committed data, so the file is rebuilt from it."""
    texts: list[str] = []
    answered: list[float] = []
    source: list[str] = []
    for kb_path, queries_path in sets:
        if kb_path.resolve().parent == SHARED.resolve():
            continue
        for q in load_jsonl(queries_path):
            texts.append(q["text"])
            answered.append(float(bool(q.get("expected_kb_id"))))
            source.append(str(kb_path))
    for row in (row for path in SEED_CORPORA for row in load_jsonl(path)):
        texts.append(row["text"])
        answered.append(float(row.get("category") == "简单咨询"))
        source.append("")
    return texts, answered, source


def build_precedents(
    sets: list[tuple[Path, Path]], encoder: semantics.Encoder
) -> tuple[Precedents, np.ndarray]:
    """The precedents and, per row, the knowledge base it came from."""
    texts, answered, source = precedent_rows(sets)
    vectors = encoder.queries([chinese.normalise(t) for t in texts])
    return Precedents(vectors.astype(np.float32), np.array(answered), encoder.version), np.array(source)


def add_precedent_feature(
    utterances: list[Utterance], sets: list[tuple[Path, Path]], encoder: semantics.Encoder
) -> Precedents:
    """Each utterance's `precedent` feature, read without the utterances of its own knowledge base
    (they were labelled against the very entries it is matched with), and the precedents shipped."""
    precedents, own = build_precedents(sets, encoder)
    mine = encoder.queries([chinese.normalise(u.text) for u in utterances])
    for u, v in zip(utterances, mine, strict=True):
        if len(u.label):
            share = precedents.share(v, exclude=own == str(sets[u.group][0]))
            u.rows["precedent"] = np.full(len(u.label), share)
    return precedents


def write_precedents(out: Path = PRECEDENTS_FILE) -> None:
    """`python -m knowledge_base.calibrate --precedents-only`: rebuild the precedents file from the
    committed data without retraining the ranker (`make install` does it; the file is not committed)."""
    encoder = semantics.encoder()
    if encoder is None:
        raise SystemExit(
            "the precedents need the embedding model (core.semantics): " + semantics.status().reason
        )
    build_precedents([s for s in DEFAULT_SETS if s[0].exists()], encoder)[0].save(out)


def _matrix(utterances: list[Utterance], features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    rows = [np.column_stack([u.rows[f] for f in features]) for u in utterances if len(u.label)]
    labels = [u.label for u in utterances if len(u.label)]
    return np.vstack(rows), np.concatenate(labels)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = x.std(axis=0)
    return x.mean(axis=0), np.where(scale > 1e-9, scale, 1.0)


def fit(utterances: list[Utterance], features: tuple[str, ...]) -> LinearModel:
    """The logistic regression over the standardised features and their pairwise products. The
    products are standardised again for training (so C treats them alike) and that second scaling is
    folded into the coefficients."""
    from sklearn.linear_model import LogisticRegression

    x, y = _matrix(utterances, features)
    mean, scale = _standardise(x)
    wide = with_pairs((x - mean) / scale)
    mean2, scale2 = _standardise(wide)
    clf = LogisticRegression(C=PAIRS_C, max_iter=5000, class_weight={0: 1.0, 1: 3.0})
    clf.fit((wide - mean2) / scale2, y)
    coef = clf.coef_[0] / scale2
    intercept = float(clf.intercept_[0] - (coef * mean2).sum())
    return LinearModel(features, mean, scale, coef, intercept, 1.0, 1.0, pairs=True)


def first_hits(model: LinearModel, utterances: list[Utterance]) -> list[tuple[float, bool, bool, bool]]:
    """(probability, right, unmet, answerable) of each utterance's first hit."""
    out = []
    for u in utterances:
        if not len(u.label):
            out.append((0.0, False, True, u.answerable))
            continue
        rows = np.column_stack([u.rows[f] for f in model.features])
        p = model.probabilities(rows)
        n = int(np.argmax(model.relevance(rows)))  # the matcher's first hit (see KnowledgeBase.match)
        out.append((float(p[n]), bool(u.label[n]), bool(u.unmet[n]), u.answerable))
    return out


def cross_validated(
    utterances: list[Utterance], features: tuple[str, ...]
) -> list[tuple[float, bool, bool, bool]]:
    groups = sorted({u.group for u in utterances})
    out: list[tuple[float, bool, bool, bool]] = []
    for g in groups:
        model = fit([u for u in utterances if u.group != g], features)
        out.extend(first_hits(model, [u for u in utterances if u.group == g]))
    return out


def figures(hits: list[tuple[float, bool, bool, bool]], t: float) -> dict[str, float]:
    confident = [h for h in hits if h[0] >= t and not h[2]]
    answerable = sum(h[3] for h in hits) or 1
    negatives = sum(not h[3] for h in hits) or 1
    right = sum(h[1] for h in confident)
    return {
        "top1": sum(h[1] for h in hits if h[3]) / answerable,
        "precision": right / len(confident) if confident else 1.0,
        "coverage": right / answerable,
        "false_positive_rate": sum(not h[3] for h in confident) / negatives,
    }


def choose(hits: list[tuple[float, bool, bool, bool]], precision: float, max_fp: float = 1.0) -> float:
    """The lowest threshold meeting the precision (and false-positive) target, and every higher one."""
    candidates = sorted({round(h[0], 4) for h in hits} | {0.99})
    feasible = [
        t
        for t in candidates
        if all(
            figures(hits, u)["precision"] >= precision and figures(hits, u)["false_positive_rate"] <= max_fp
            for u in candidates
            if u >= t
        )
    ]
    return min(feasible) if feasible else 0.99


def best_split(hits: list[tuple[float, bool, bool, bool]]) -> float:
    """The "probably answers it" bar: the threshold that best separates utterances the first hit
    answers (counted right above it) from those no entry answers (counted right below it)."""

    def correct(t: float) -> int:
        return sum((h[0] >= t and h[1]) or (h[0] < t and not h[3]) for h in hits if not h[2])

    candidates = sorted({round(h[0], 4) for h in hits})
    return max(candidates, key=lambda t: (correct(t), t)) if candidates else 0.5


def train(
    sets: list[tuple[Path, Path]], encoder: semantics.Encoder | None, out: Path = RANKER_FILE
) -> dict[str, Any]:
    utterances = collect(sets, encoder)
    result: dict[str, Any] = {}
    if encoder is not None:
        result["question"] = add_question_feature(utterances, encoder).to_json()
        precedents = add_precedent_feature(utterances, sets, encoder)
        precedents.save(out.with_name(PRECEDENTS_FILE.name))
        result["precedents"] = PRECEDENTS_FILE.name
    for name, features in (("hybrid", HYBRID_FEATURES), ("lexical", LEXICAL_FEATURES)):
        if name == "hybrid" and encoder is None:
            raise SystemExit(
                "the hybrid model needs the embedding model (core.semantics): " + semantics.status().reason
            )
        hits = cross_validated(utterances, features)
        threshold = choose(hits, MIN_PRECISION, MAX_FALSE_POSITIVE)
        answerable = min(threshold, best_split(hits))
        model = fit(utterances, features)
        model = replace(model, threshold=threshold, answerable=answerable)
        result[name] = model.to_json() | {
            "cross_validated": {k: round(v, 4) for k, v in figures(hits, threshold).items()},
        }
    result["trained_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["encoder"] = encoder.version if encoder else None
    result["sets"] = [f"{k.name} + {q.name}" for k, q in sets]
    result["utterances"] = len(utterances)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base.calibrate", description=__doc__)
    parser.add_argument("--set", nargs=2, action="append", metavar=("KB", "QUERIES"), help="a tuning set")
    parser.add_argument("--out", type=Path, default=RANKER_FILE)
    parser.add_argument("--precedents-only", action="store_true", help="rebuild precedents.npz only")
    args = parser.parse_args(argv)
    if args.precedents_only:
        write_precedents(args.out.with_name(PRECEDENTS_FILE.name))
        print(f"written to {args.out.with_name(PRECEDENTS_FILE.name)}")
        return 0
    sets = (
        [(Path(k), Path(q)) for k, q in args.set] if args.set else [s for s in DEFAULT_SETS if s[0].exists()]
    )
    result = train(sets, semantics.encoder(), args.out)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for name in ("hybrid", "lexical"):
        r = result[name]
        print(
            f"{name}: threshold {r['threshold']}, answerable {r['answerable']}, "
            f"cross-validated {r['cross_validated']}"
        )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
