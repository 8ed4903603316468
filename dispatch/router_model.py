"""The trained part of the router: what a caller said -> category, sub-category, department, with
probabilities.

Input: the utterance's sentence embedding (core.semantics, shared with the knowledge base) beside
hashed character n-grams of the normalised text (they carry the hotline's own terms: 公积金, 低保,
ytjd's street names). Three multinomial logistic regressions (scikit-learn) over those features:

- category (the ten of the category tree and the transfers, 简单咨询 included: a question with a
  standard answer),
- sub-category (trained on the rows that name one),
- department (a code, or "-" for calls that have none: transfers and 无法判定).

The model is stored as arrays in a `.npz` file (no pickled code): the shipped one
(`dispatch/models/router.npz`, trained on the seed corpus and the tuning sets by
`hotline train-router --seed-only`), or newer ones trained with the hotline's own tickets, kept in the
data directory with their cross-validated accuracy (`hotline train-router`).
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core import chinese, semantics

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "router.npz"
# Written for training by other hands than any evaluation set: the first corpus (1 129 utterances, three
# helpers), a second (900, one more helper, every sub-category at least ten times and the line between
# 简单咨询 "how do I" and 政策咨询 "do I qualify, how much") and a third (1 000, a sixth helper: 265
# questions over two dozen public services, 150 emergencies mostly told without alarm words) and a
# fourth (900, a seventh helper: 245 emergencies, 158 alarming non-emergencies, 简单咨询/政策咨询 pairs) and a
# fifth (900, an eighth helper: departments that one keyword does not tell, every sub-category ten times).
SEED_CORPORA = tuple(sorted((Path(__file__).resolve().parent / "models").glob("seed_corpus*.jsonl")))
# Inverse regularisation of the three heads. Chosen by training on the first corpus and the tuning
# sets and testing on the second corpus (another author): C 1 / 3 / 10 / 30 / 100 gave category
# 0.62 / 0.71 / 0.74 / 0.75 / 0.76 and department 0.62 / 0.71 / 0.75 / 0.77 / 0.78.
C = 30.0
NO_DEPARTMENT = "-"
HASH_FEATURES = 2**14
NGRAMS = (1, 3)
# How much the n-grams weigh against the embedding (both l2-normalised).
NGRAM_WEIGHT = 1.0
HEADS = ("category", "subcategory", "department")


class RouterModelError(ValueError):
    """A router model file is missing, broken or made for another embedding model."""


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    subcategory: str | None
    department: str | None
    source: str = "seed"


@dataclass
class Head:
    classes: np.ndarray
    coef: np.ndarray  # classes x features
    intercept: np.ndarray

    def probabilities(self, x: Any) -> np.ndarray:
        z = np.asarray(x @ self.coef.T).ravel() + self.intercept
        z = z - z.max()
        e = np.exp(z)
        return e / e.sum()


@dataclass
class RouterModel:
    heads: dict[str, Head]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "?"))

    @property
    def uses_embedding(self) -> bool:
        return bool(self.meta.get("encoder"))

    def predict(self, features: np.ndarray) -> dict[str, dict[str, float]]:
        return {
            name: dict(zip(head.classes.tolist(), head.probabilities(features).tolist(), strict=True))
            for name, head in self.heads.items()
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(self.meta, ensure_ascii=False))}
        dim = int(self.meta.get("dim", 0))
        for name, head in self.heads.items():
            arrays[f"{name}.classes"] = head.classes.astype(str)
            arrays[f"{name}.coef"], arrays[f"{name}.scale"] = _quantise(head.coef, dim)
            arrays[f"{name}.intercept"] = head.intercept.astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RouterModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                dim = int(meta.get("dim", 0))
                heads = {
                    name: Head(
                        data[f"{name}.classes"],
                        _dequantise(data[f"{name}.coef"], data[f"{name}.scale"], dim),
                        data[f"{name}.intercept"].astype(np.float32),
                    )
                    for name in HEADS
                }
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise RouterModelError(f"分派模型 {path} 无法读取：{exc}") from exc
        width = HASH_FEATURES + int(meta.get("dim", 0))
        if any(h.coef.shape != (len(h.classes), width) for h in heads.values()):
            raise RouterModelError(f"分派模型 {path} 的特征维度不对，请重新训练（hotline train-router）")
        return cls(heads, meta)


def _blocks(width: int, dim: int) -> list[slice]:
    """The embedding's columns and the n-grams' columns: their weights differ in size, so each block
    gets its own scale (one scale for a whole row rounds the small n-gram weights away)."""
    return [b for b in (slice(0, dim), slice(dim, width)) if b.stop > b.start]


def _quantise(coef: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """8-bit weights with a float scale per class and block: a quarter of float32, and the shipped
    model stays small (about 0.6 MB); the rounding does not change its decisions."""
    blocks = _blocks(coef.shape[1], dim)
    scale = np.ones((coef.shape[0], len(blocks)), dtype=np.float32)
    quantised = np.zeros(coef.shape, dtype=np.int8)
    for n, block in enumerate(blocks):
        peak = np.abs(coef[:, block]).max(axis=1) / 127
        scale[:, n] = np.where(peak > 0, peak, 1.0)
        quantised[:, block] = np.round(coef[:, block] / scale[:, n : n + 1])
    return quantised, scale


def _dequantise(quantised: np.ndarray, scale: np.ndarray, dim: int) -> np.ndarray:
    coef = quantised.astype(np.float32)
    for n, block in enumerate(_blocks(coef.shape[1], dim)):
        coef[:, block] *= scale[:, n : n + 1]
    return coef


_LOADED: dict[Path, tuple[float, RouterModel]] = {}
_LOADED_LOCK = threading.Lock()


def load_cached(path: Path) -> RouterModel:
    """A model file loaded once per process (again when the file changes)."""
    try:
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise RouterModelError(f"分派模型 {path} 不存在：{exc.strerror}") from exc
    with _LOADED_LOCK:
        cached = _LOADED.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    model = RouterModel.load(path)
    with _LOADED_LOCK:
        _LOADED[path] = (stamp, model)
    return model


def trained_dir() -> Path:
    """Where `hotline train-router` keeps the models it trains (HOTLINE_MODEL_DIR, or var/models)."""
    return Path(os.environ.get("HOTLINE_MODEL_DIR", ROOT / "var" / "models"))


def lexical_twin(path: Path) -> Path:
    """The n-gram-only model trained beside a model, for when the embedding model is missing."""
    return path.with_name(path.stem + "-lexical" + path.suffix)


def current_model_path() -> Path:
    """The latest model `hotline train-router` chose, else the shipped one."""
    trained = trained_dir() / "router.npz"
    return trained if trained.exists() else SHIPPED_MODEL


class Featuriser:
    """Text -> the model's feature row (embedding, then hashed character n-grams)."""

    def __init__(self, encoder: semantics.Encoder | None, dim: int) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.encoder = encoder
        self.dim = dim
        self._hash = HashingVectorizer(
            analyzer="char", ngram_range=NGRAMS, n_features=HASH_FEATURES, alternate_sign=False, norm="l2"
        )

    @staticmethod
    def normalise(text: str) -> str:
        return chinese.normalise(text)

    def rows(self, texts: Sequence[str]) -> Any:
        """A sparse matrix (the n-grams are sparse; training on it is many times faster)."""
        from scipy import sparse

        normalised = [self.normalise(t) for t in texts]
        grams = self._hash.transform(normalised).astype(np.float32) * NGRAM_WEIGHT
        if not self.dim:
            return grams.tocsr()
        if self.encoder is None:
            vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        else:
            vectors = self.encoder.queries(normalised)
        return sparse.hstack([sparse.csr_matrix(vectors), grams]).tocsr()

    def row(self, text: str) -> np.ndarray:
        normalised = self.normalise(text)
        grams = self._hash.transform([normalised]).toarray()[0].astype(np.float32) * NGRAM_WEIGHT
        if not self.dim:
            return grams
        if self.encoder is None:
            vector = np.zeros(self.dim, dtype=np.float32)
        else:
            vector = self.encoder.query(normalised)
        return np.concatenate([vector.astype(np.float32), grams])


# --------------------------------------------------------------------------------------------
# Training


# Labelled utterances besides the seed corpus: the knowledge base's tuning sets (their category and
# department) and, when present, the shared samples. Never the evaluation set (heldout9).
TUNING_QUERIES = [
    ROOT / "knowledge_base" / "tuning" / "t1_queries.jsonl",
    ROOT / "knowledge_base" / "tuning" / "t2_queries.jsonl",
    ROOT / "knowledge_base" / "tuning" / "t3_queries.jsonl",
    ROOT / "knowledge_base" / "tuning" / "t4_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout_queries_2.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout3_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout4_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout5_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout6_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout7_queries.jsonl",
    ROOT / "tests" / "knowledge_base" / "data" / "heldout8_queries.jsonl",
    ROOT.parent / "shared" / "samples" / "queries_sample.jsonl",
]


def base_examples() -> list[Example]:
    """The seed corpus and the tuning sets: what a model starts from before any ticket exists."""
    out = [e for path in SEED_CORPORA for e in load_examples(path, "seed")]
    for path in TUNING_QUERIES:
        if path.exists():
            out.extend(load_examples(path, "tuning"))
    return out


def load_examples(path: Path, source: str) -> list[Example]:
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        category = row.get("category") or row.get("expected_category")
        if not category:
            continue
        department = row.get("department", row.get("expected_department"))
        out.append(Example(row["text"], category, row.get("subcategory"), department, source))
    return out


def _fit_head(x: Any, labels: list[str], c: float) -> Head:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(x, labels)
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    return Head(np.asarray(clf.classes_), coef.astype(np.float32), intercept.astype(np.float32))


def fit(
    examples: list[Example], featuriser: Featuriser, c: float = C, x: np.ndarray | None = None
) -> dict[str, Head]:
    if x is None:
        x = featuriser.rows([e.text for e in examples])
    heads = {
        "category": _fit_head(x, [e.category for e in examples], c),
        "department": _fit_head(x, [e.department or NO_DEPARTMENT for e in examples], c),
    }
    with_sub = [i for i, e in enumerate(examples) if e.subcategory]
    heads["subcategory"] = _fit_head(x[with_sub], [examples[i].subcategory or "" for i in with_sub], c)
    return heads


def cross_validate(
    examples: list[Example], featuriser: Featuriser, folds: int = 5, c: float = C
) -> dict[str, float]:
    """Accuracy of category and department on held-back folds (every fifth example)."""
    x = featuriser.rows([e.text for e in examples])
    right_cat = right_dept = 0
    for fold in range(folds):
        test = [i for i in range(len(examples)) if i % folds == fold]
        train = [i for i in range(len(examples)) if i % folds != fold]
        heads = fit([examples[i] for i in train], featuriser, c, x[train])
        model = RouterModel(heads)
        for i in test:
            p = model.predict(x[i])
            right_cat += max(p["category"], key=p["category"].__getitem__) == examples[i].category
            dept = max(p["department"], key=p["department"].__getitem__)
            right_dept += dept == (examples[i].department or NO_DEPARTMENT)
    n = len(examples) or 1
    return {"category_accuracy": round(right_cat / n, 4), "department_accuracy": round(right_dept / n, 4)}


def train(
    examples: list[Example], encoder: semantics.Encoder | None, c: float = C, folds: int = 5
) -> RouterModel:
    dim = encoder.dim if encoder is not None else 0
    featuriser = Featuriser(encoder, dim)
    cv = cross_validate(examples, featuriser, folds, c) if folds >= 2 else {}
    heads = fit(examples, featuriser, c)
    sources: dict[str, int] = {}
    for e in examples:
        sources[e.source] = sources.get(e.source, 0) + 1
    now = datetime.now(UTC)
    meta = {
        "version": now.strftime("%Y%m%d%H%M%S"),
        "trained_at": now.isoformat(timespec="seconds"),
        "encoder": encoder.version if encoder is not None else None,
        "dim": dim,
        "examples": len(examples),
        "sources": sources,
        "cross_validated": cv,
    }
    return RouterModel(heads, meta)
