"""Which knowledge-base entry answers a caller, and how sure to be: a model learned from data.

For every candidate entry (the best of the lexical retriever and the best of the dense one) the
matcher measures a handful of features: how close the sentence embeddings are, by how much this
entry beats the next one in each retriever, whether the two retrievers agree, and whether the caller
asks for something the entry does not cover (a delay, a fault, a case such as 在外地 or 新生儿 that the
entry is limited to). A logistic regression over the features and their pairwise products (a dense
gap says more when the two retrievers agree than when they do not) turns them into the probability
that the entry is the right answer; hits are ranked by it and the first is "confident" above a
threshold chosen, on cross-validated predictions, for the precision the console promises (可直接宣读).

The model is a JSON file of coefficients (`ranker.json`, no pickled code), trained by
`python -m knowledge_base.calibrate`. There are two: `hybrid` (with the embedding model) and
`lexical` (used when the embedding model is not available).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

RANKER_FILE = Path(__file__).resolve().with_name("ranker.json")
# The labelled utterances behind the `precedent` feature, beside the ranker (arrays, no pickled code).
PRECEDENTS_FILE = RANKER_FILE.with_name("precedents.npz")

LEXICAL_FEATURES = (
    "lex",  # the lexical matcher's absolute score, 0..1
    "lex_gap",  # lex minus the best lex among the other candidates
    "lex_first",  # 1 when this entry is the lexical retriever's first
    "unmet_need",  # the caller asks for a delay / fault / complaint ... the entry does not speak of
    "unmet_condition",  # the entry is limited to a case (在外地, 新生儿 ...) the caller does not mention
    "unmet_action",  # the caller names an action (注销, 提取 ...) and the entry names only others
    "short",  # 1 for an utterance of under 6 characters, 0 from 12 on
    "foreign_terms",  # key terms of the knowledge base the caller names and this entry never does
    "lex_answer",  # share of the caller's word weight found in the entry's answer only
)
DENSE_FEATURES = (
    "dense",  # best cosine of the utterance with the entry's question or alternatives
    "dense_gap",  # dense minus the best dense of any other entry
    "dense_first",  # 1 when this entry is the dense retriever's first
    "agree",  # first in both retrievers
    "asks",  # probability that the utterance asks a question with a standard answer (QuestionModel)
    "precedent",  # how often the nearest labelled utterances were answered by their knowledge base
)
HYBRID_FEATURES = LEXICAL_FEATURES + DENSE_FEATURES


def with_pairs(z: np.ndarray) -> np.ndarray:
    """Standardised features followed by the product of every pair of them (rows x n(n+1)/2)."""
    left, right = np.triu_indices(z.shape[1], k=1)
    return np.hstack([z, z[:, left] * z[:, right]])


def width(n: int, pairs: bool) -> int:
    return n + n * (n - 1) // 2 if pairs else n


@dataclass(frozen=True)
class LinearModel:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # over the standardised features, then their pairwise products when `pairs`
    intercept: float
    threshold: float  # confident at or above (precision target on cross-validation)
    answerable: float  # "probably answers it" (the lower bar of dispatch.triage)
    pairs: bool = False

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        z = (rows - self.mean) / self.scale
        if self.pairs:
            z = with_pairs(z)
        logit = z @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))

    def relevance(self, rows: np.ndarray) -> np.ndarray:
        """The probabilities as if every need were met: how closely each entry matches what was asked.
        The hits are ranked by it (an entry for a narrower case, 在外地补办身份证, is still the nearest
        topic for 身份证丢了, and must not fall behind 户口本丢了 for it)."""
        met = rows.copy()
        met[:, [n for n, name in enumerate(self.features) if name.startswith("unmet_")]] = 0.0
        return self.probabilities(met)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(x), 6) for x in self.mean],
            "scale": [round(float(x), 6) for x in self.scale],
            "coef": [round(float(x), 6) for x in self.coef],
            "intercept": round(float(self.intercept), 6),
            "threshold": round(float(self.threshold), 4),
            "answerable": round(float(self.answerable), 4),
            "pairs": self.pairs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        features = tuple(data["features"])
        pairs = bool(data.get("pairs", False))
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if arrays[0].shape != (len(features),) or arrays[1].shape != (len(features),):
            raise ValueError("ranker model: means and scales do not match the features")
        if arrays[2].shape != (width(len(features), pairs),):
            raise ValueError("ranker model: coefficients do not match the features")
        return cls(
            features,
            arrays[0],
            np.where(arrays[1] > 0, arrays[1], 1.0),
            arrays[2],
            float(data["intercept"]),
            float(data["threshold"]),
            float(data.get("answerable", data["threshold"])),
            pairs,
        )


@dataclass(frozen=True)
class QuestionModel:
    """Does the utterance ask something a knowledge base answers (rather than report a fault, complain,
    or ask about a case)? A logistic regression over the sentence embedding."""

    coef: np.ndarray
    intercept: float

    def probability(self, vector: np.ndarray) -> float:
        z = float(vector @ self.coef) + self.intercept
        return 1.0 / (1.0 + float(np.exp(-np.clip(z, -30, 30))))

    def to_json(self) -> dict[str, Any]:
        return {"coef": [round(float(x), 6) for x in self.coef], "intercept": round(self.intercept, 6)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionModel:
        return cls(np.asarray(data["coef"], dtype=np.float32), float(data["intercept"]))


@dataclass(frozen=True)
class Precedents:
    """Utterances of the tuning sets with whether their own knowledge base answered them. A caller's
    nearest ones say whether such a request usually has a standard answer (社保卡丢了怎么补办) or asks
    about a case (按什么标准交, 还没到账), which is where a close entry still misleads. Local where the
    question model is one linear boundary: on the tuning sets, leaving each knowledge base's own
    utterances out, it raised coverage at the precision target from 0.50 to 0.59 (calibrate.py)."""

    vectors: np.ndarray  # rows: L2-normalised embeddings (float16 on disk)
    answered: np.ndarray  # 1.0 when an entry of its knowledge base answered the utterance
    encoder: str  # the embedding model's version the vectors come from
    k: int = 10  # neighbours read
    sharpness: float = 20.0  # weight exp(sharpness * (cosine - 1)): the nearest count most

    def share(self, vector: np.ndarray, exclude: np.ndarray | None = None) -> float:
        """Similarity-weighted share of answered utterances among the k nearest (`exclude`: rows
        not to read, for cross-validation)."""
        sims = self.vectors @ vector.astype(self.vectors.dtype)
        if exclude is not None:
            sims = np.where(exclude, -2.0, sims)
        k = min(self.k, len(sims))
        if k == 0:
            return 0.0
        near = np.argpartition(-sims, k - 1)[:k]
        weights = np.exp(self.sharpness * (sims[near].astype(np.float64) - 1.0))
        return float((weights * self.answered[near]).sum() / weights.sum())

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            vectors=self.vectors.astype(np.float16),
            answered=self.answered.astype(np.uint8),
            meta=np.array(json.dumps({"encoder": self.encoder, "k": self.k, "sharpness": self.sharpness})),
        )

    @classmethod
    def load(cls, path: Path) -> Precedents:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            vectors = data["vectors"].astype(np.float32)
            answered = data["answered"].astype(np.float64)
        if vectors.ndim != 2 or answered.shape != (len(vectors),):
            raise ValueError("precedents: vectors and labels do not match")
        return cls(vectors, answered, str(meta["encoder"]), int(meta["k"]), float(meta["sharpness"]))


def read_precedents(path: Path) -> Precedents:
    """The precedents of a file, read once while it is unchanged: every matcher built from it (one per
    day and per test) shares the same 16 MB of vectors instead of holding its own copy."""
    stat = path.stat()
    return _read_precedents(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read_precedents(path: str, _mtime_ns: int, _size: int) -> Precedents:
    found = Precedents.load(Path(path))
    found.vectors.setflags(write=False)  # shared: nobody may change them
    found.answered.setflags(write=False)
    return found


class RankerError(ValueError):
    """The ranker file is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class Models:
    hybrid: LinearModel
    lexical: LinearModel
    question: QuestionModel | None
    precedents: Precedents | None = None


def load_models(path: Path = RANKER_FILE) -> Models:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        question = QuestionModel.from_json(data["question"]) if data.get("question") else None
        precedents = read_precedents(path.with_name(data["precedents"])) if data.get("precedents") else None
        models = Models(
            LinearModel.from_json(data["hybrid"]),
            LinearModel.from_json(data["lexical"]),
            question,
            precedents,
        )
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        raise RankerError(f"知识库置信度模型 {path} 无法读取：{exc}") from exc
    if "precedent" in models.hybrid.features and models.precedents is None:
        raise RankerError(
            f"知识库置信度模型 {path} 缺少相似来电样本（precedents），"
            "请重新运行 python -m knowledge_base.calibrate"
        )
    if models.hybrid.features != HYBRID_FEATURES or models.lexical.features != LEXICAL_FEATURES:
        raise RankerError(
            f"知识库置信度模型 {path} 的特征与程序不一致，请重新运行 python -m knowledge_base.calibrate"
        )
    return models


def short_feature(length: int) -> float:
    return float(min(1.0, max(0.0, (12 - length) / 6)))
