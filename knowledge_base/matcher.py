"""Matching what a caller said against the knowledge base.

Pipeline, for the entries once and for every query:

1. normalise: full/half width, case, punctuation, fillers (喂/你好/那个/就是/我想问一下 …);
2. (queries only) repair homophones: a 2-4 character window that is not a word but sounds like a
   knowledge-base term (公鸡金 -> 公积金, 设保 -> 社保, 身分正 -> 身份证) is replaced by the term;
3. Chinese numerals to digits (六十六岁 -> 66岁); synonyms rewritten to one canonical term
   (市民卡 -> 社保卡, 住房基金 -> 公积金, 咋整 -> 怎么办);
4. three BM25 channels over every phrasing of an entry (question, alternatives, keywords): jieba
   words (those of the canonical text, plus those the text had before synonyms were rewritten),
   character bigrams and toneless fuzzy-pinyin bigrams (the last survives any homophone); and a
   weaker fourth over the words of the answer, for callers who ask about a detail only it gives;
5. the best candidates are re-scored with absolute measures (how much of an entry's phrasing the
   query covers, per channel, and rapidfuzz partial similarity), giving a lexical score in 0..1;
6. dense retrieval: the utterance's sentence embedding (core.semantics, multilingual-e5-small) against
   the embeddings of every entry's question and alternatives; the best entries of both retrievers
   become the candidates (the answer is read by the lexical fourth channel only: its embedding cost
   more than half the indexing time and, measured on the tuning sets, changed nothing the ranker
   decides);
7. a learned model (knowledge_base.ranker) turns each candidate's features (dense and lexical scores,
   the gaps to the next entry, agreement of the retrievers, needs and cases the entry does not
   cover, how often the nearest labelled utterances were answered) into the probability that it
   answers the caller; hits are ranked by it, and the first is
   `confident` at or above the threshold chosen for the console's precision, never when the caller
   asks for something the entry does not cover (a near miss is worse than no suggestion).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from core import chinese, semantics
from knowledge_base import text as tx
from knowledge_base.ranker import RANKER_FILE, LinearModel, Models, Precedents, load_models, short_feature

log = logging.getLogger(__name__)

CANDIDATES = 24
# Used by the environment variable / argument "default": the process-wide encoder of core.semantics.
_DEFAULT = object()

# Weights of the absolute re-scoring (they sum to 1).
W_WORD, W_CHAR, W_PINYIN, W_FUZZ, W_RANK = 0.30, 0.15, 0.15, 0.15, 0.25
# Weight of the answer's words among the ranking channels (question words 0.5, character and pinyin
# bigrams 0.25 each): callers often ask about a detail only the answer speaks of (照片, 民政局, 余额),
# but an answer says much besides its question, so it counts for less than any phrasing of it.
W_ANSWER = 0.2


@dataclass(frozen=True)
class Entry:
    id: str
    question: str
    alternatives: tuple[str, ...] = ()
    answer: str = ""
    keywords: tuple[str, ...] = ()
    department: str | None = None
    topic: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            alternatives=tuple(data.get("alternatives") or ()),
            answer=str(data.get("answer") or ""),
            keywords=tuple(data.get("keywords") or ()),
            department=data.get("department"),
            topic=data.get("topic"),
        )


@dataclass(frozen=True)
class Hit:
    entry_id: str
    score: float  # probability that the entry answers the caller (knowledge_base.ranker)
    confident: bool
    needs_unmet: frozenset[str] = field(default_factory=frozenset)
    # probability it would answer if the caller's case were the entry's: how closely it matches what
    # was asked, whatever is unmet (the order of the hits; a near miss still shows its topic)
    relevance: float = 0.0
    # first of both retrievers (lexical and dense): without it a hit is never "probably the answer"
    agreed: bool = True


@dataclass(frozen=True)
class EntryVectors:
    """An entry's embeddings: one row per phrasing (question, then alternatives)."""

    phrasings: np.ndarray


@dataclass
class Candidates:
    """What the matcher measured of an utterance against its candidate entries (for the ranker)."""

    index: list[int]
    features: dict[str, np.ndarray]
    unmet: list[frozenset[str]]


@dataclass
class _Prepared:
    canon: str  # normalised text with synonyms rewritten to canonical terms
    words: list[str]
    bigrams: list[str]
    pinyin: list[str]
    # words of the text as said, before synonyms were rewritten, that the canonical text lacks
    # (免费乘车卡 becomes 老年卡, yet a caller's 乘车证 should still meet its 乘车)
    said: list[str] = field(default_factory=list)


def _canonicalise(text: str) -> str:
    return tx._SYN_RE.sub(lambda m: tx._VARIANT_TO_CANONICAL.get(m.group(0), m.group(0)), text)


def _prepare(normalised: str) -> _Prepared:
    digits = chinese.numerals_to_digits(normalised)
    canon = _canonicalise(digits)
    words = tx.content_words(canon)
    said = [w for w in dict.fromkeys(tx.content_words(digits)) if w not in words] if canon != digits else []
    return _Prepared(canon, words, tx.char_bigrams(canon), tx.pinyin_bigrams(chinese.syllables(canon)), said)


_Weighed = tuple[tuple[tuple[str, float], ...], float]


class _Channel:
    """One BM25 index over documents (entries), plus idf-weighted coverage of single phrasings."""

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.n = len(docs)
        self.k1, self.b = k1, b
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        self.idf = {t: math.log(1 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        avg = sum(len(d) for d in docs) / max(1, self.n)
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, d in enumerate(docs):
            norm = k1 * (1 - b + b * len(d) / max(avg, 1e-9))
            for t, f in Counter(d).items():
                self.postings[t].append((i, self.idf[t] * f * (k1 + 1) / (f + norm)))
        # Terms in more than a twelfth of the entries separate nothing and cost time.
        self.skip = {t for t, c in df.items() if c > max(50, self.n // 12)}

    def score(self, query: Iterable[str], acc: dict[int, float], weight: float) -> None:
        total: dict[int, float] = defaultdict(float)
        for t in set(query):
            if t in self.skip:
                continue
            for i, s in self.postings.get(t, ()):
                total[i] += s
        if not total:
            return
        top = max(total.values())
        for i, s in total.items():
            acc[i] = acc.get(i, 0.0) + weight * s / top

    def weigh(self, phrase: Iterable[str]) -> _Weighed:
        """A phrasing's distinct terms with their idf, and the sum of those (computed once per entry)."""
        terms = tuple((t, self.idf.get(t, 1.0)) for t in dict.fromkeys(phrase))
        return terms, sum(w for _t, w in terms)

    @staticmethod
    def covered(query: set[str], weighed: _Weighed) -> float:
        """Share of a phrasing's idf weight that the query covers."""
        terms, whole = weighed
        if whole <= 0:
            return 0.0
        return sum(w for t, w in terms if t in query) / whole


class KnowledgeBase:
    """An in-memory index of knowledge-base entries; build once, `match` many times (thread-safe)."""

    def __init__(
        self,
        entries: Iterable[Entry | Mapping[str, Any] | Any],
        threshold: float | None = None,
        answerable: float | None = None,
        *,
        encoder: Any = _DEFAULT,
        vectors: Mapping[str, EntryVectors] | None = None,
        ranker: Path | Models | None = None,
    ) -> None:
        """`encoder`: the sentence-embedding model (default: core.semantics' process-wide one; None:
        lexical only). `vectors`: embeddings already made for some entries (kept in the database with
        each entry version), so only the others are embedded now. `ranker`: the learned model (default
        `ranker.json`); thresholds may be overridden for experiments."""
        self.entries: list[Entry] = [self._entry(e) for e in entries]
        self.by_id = {e.id: e for e in self.entries}
        self.encoder: semantics.Encoder | None = semantics.encoder() if encoder is _DEFAULT else encoder
        self.models = ranker if isinstance(ranker, Models) else load_models(ranker or RANKER_FILE)
        self._precedents = self._usable_precedents()
        self._setup_dense(vectors or {})
        model = self.model
        self.threshold = threshold if threshold is not None else model.threshold
        # Lower bar for "probably answers it" (see dispatch.triage); never above the confident one.
        self.answerable_threshold = min(
            answerable if answerable is not None else model.answerable, self.threshold
        )
        vocab: set[str] = set()
        for e in self.entries:
            vocab.update(k for k in e.keywords if len(k) >= 2)
            if e.topic:
                vocab.add(e.topic)
        chinese.add_words(vocab)
        self._phrasings: list[list[_Prepared]] = []
        self._needs: list[frozenset[str]] = []
        self._conditions: list[frozenset[str]] = []
        self._actions: list[frozenset[str]] = []
        word_docs, bigram_docs, pinyin_docs, answer_docs = [], [], [], []
        for e in self.entries:
            texts = [e.question, *e.alternatives, "".join(e.keywords)]
            prepared = [_prepare(chinese.normalise(t)) for t in texts]
            # Keywords also count one by one, so that a keyword is a word even if jieba splits it.
            prepared[-1].words = [
                *prepared[-1].words,
                *(_canonicalise(chinese.normalise(k)) for k in e.keywords),
            ]
            self._phrasings.append(prepared)
            word_docs.append(
                [w for p in prepared for w in (*p.words, *p.said)] + ([e.topic] if e.topic else [])
            )
            bigram_docs.append([g for p in prepared for g in p.bigrams])
            pinyin_docs.append([g for p in prepared for g in p.pinyin])
            answer_docs.append(_prepare(chinese.normalise(e.answer)).words if e.answer else [])
            self._needs.append(tx.needs_of(chinese.normalise(" ".join([e.question, *e.alternatives]))))
            self._conditions.append(tx.conditions_of(prepared[0].canon))
            self._actions.append(frozenset().union(*(tx.actions_of(p.canon) for p in prepared)))
            for p in prepared:
                vocab.update(w for w in p.words if len(w) >= 2 and chinese.is_dictionary_word(w))
        self._words = _Channel(word_docs)
        # Key terms of the knowledge base (every entry's keywords and topic): a caller who names one
        # that an entry never mentions (身份证, asking the 户口本 entry) is probably asking another.
        self._key_terms = {
            _canonicalise(chinese.normalise(k))
            for e in self.entries
            for k in (*e.keywords, e.topic or "")
            if len(k) >= 2
        }
        self._entry_terms = [set(doc) for doc in word_docs]
        self._bigrams = _Channel(bigram_docs)
        self._pinyin = _Channel(pinyin_docs)
        self._answers = _Channel(answer_docs)
        # what only an answer says (冷静期, 照片): the answer is not embedded, its words stand for it
        self._answer_terms = [frozenset(doc) - self._entry_terms[i] for i, doc in enumerate(answer_docs)]
        self._weighed = [
            [
                (self._words.weigh(p.words), self._bigrams.weigh(p.bigrams), self._pinyin.weigh(p.pinyin))
                for p in ps
            ]
            for ps in self._phrasings
        ]
        self._vocab = vocab | {w for c, vs in tx.SYNONYMS.items() for w in (c, *vs) if len(w) >= 2}
        # rarer terms win a shared sound
        self._repair = chinese.HomophoneRepair(self._vocab, Counter(self._words.idf))

    # --- construction helpers -------------------------------------------------------------------

    @staticmethod
    def _entry(e: Entry | Mapping[str, Any] | Any) -> Entry:
        if isinstance(e, Entry):
            return e
        if isinstance(e, Mapping):
            return Entry.from_mapping(e)
        # A database row (knowledge_base.models.KbEntry) or anything shaped like one.
        return Entry(
            id=str(getattr(e, "external_id", None) or e.id),
            question=e.question,
            alternatives=tuple(e.alternatives or ()),
            answer=e.answer or "",
            keywords=tuple(e.keywords or ()),
            department=getattr(e, "department_code", None) or getattr(e, "department", None),
            topic=getattr(e, "topic", None),
        )

    @classmethod
    def from_jsonl(cls, path: str | Path, **kwargs: Any) -> KnowledgeBase:
        with open(path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return cls(rows, **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    # --- query side -----------------------------------------------------------------------------

    def repair_homophones(self, text: str) -> str:
        """Windows that are not words but sound like a knowledge-base term become the term."""
        return self._repair.repair(text)

    @property
    def model(self) -> LinearModel:
        return self.models.hybrid if self._dense is not None else self.models.lexical

    @property
    def mode(self) -> str:
        """ "hybrid" (lexical and dense retrieval) or "lexical" (no embedding model)."""
        return "hybrid" if self._dense is not None else "lexical"

    def _usable_precedents(self) -> Precedents | None:
        """The precedents, when they come from the embedding model in use: another model's vectors
        would say nothing (and may not even have its width)."""
        found = self.models.precedents
        if found is None or self.encoder is None or found.encoder == self.encoder.version:
            return found
        log.warning(
            "相似来电样本来自另一个向量模型（%s，当前 %s），不使用；"
            "请重新运行 python -m knowledge_base.calibrate",
            found.encoder,
            self.encoder.version,
        )
        return None

    def _setup_dense(self, given: Mapping[str, EntryVectors]) -> None:
        self._dense: np.ndarray | None = None
        self.vectors: dict[str, EntryVectors] = {}
        self.embedded_now: list[str] = []  # entries embedded here (not given): worth keeping
        if self.encoder is None or not self.entries:
            return
        todo = [e for e in self.entries if e.id not in given]
        self.vectors = embed_entries(self.encoder, todo)
        self.embedded_now = [e.id for e in todo]
        for e in self.entries:
            if e.id in given:
                self.vectors[e.id] = given[e.id]
        owners = [i for i, e in enumerate(self.entries) for _ in range(len(self.vectors[e.id].phrasings))]
        self._dense = np.vstack([self.vectors[e.id].phrasings for e in self.entries]).astype(np.float32)
        self._owner = np.asarray(owners, dtype=np.int64)

    def embed(self, text: str) -> np.ndarray | None:
        """The utterance's embedding as the matcher uses it (shared with the router, cached)."""
        if self.encoder is None:
            return None
        return self.encoder.query(chinese.normalise(text))

    def _lexical(self, q: _Prepared, i: int, acc: dict[int, float], sets: tuple[set[str], ...]) -> float:
        q_words, q_bigrams, q_pinyin = sets
        best = 0.0
        for p, (words, bigrams, pinyin) in zip(self._phrasings[i], self._weighed[i], strict=True):
            value = (
                W_WORD * _Channel.covered(q_words, words)
                + W_CHAR * _Channel.covered(q_bigrams, bigrams)
                + W_PINYIN * _Channel.covered(q_pinyin, pinyin)
                + W_FUZZ * fuzz.partial_ratio(p.canon, q.canon) / 100
            )
            best = max(best, value)
        return min(1.0, best + W_RANK * acc.get(i, 0.0))

    def candidates(self, text: str) -> Candidates | None:
        """The candidate entries of an utterance with the ranker's features (None: nothing to match)."""
        if not self.entries or not text.strip():
            return None
        normalised = chinese.normalise(text)
        if not normalised:
            return None
        repaired = self.repair_homophones(normalised)
        q = _prepare(repaired)
        sets = (set(q.words) | set(q.said), set(q.bigrams), set(q.pinyin))
        acc: dict[int, float] = {}
        self._words.score(sets[0], acc, 0.5)
        self._bigrams.score(q.bigrams, acc, 0.25)
        self._pinyin.score(q.pinyin, acc, 0.25)
        self._answers.score(sets[0], acc, W_ANSWER)
        lexical_first = sorted(acc, key=acc.__getitem__, reverse=True)[:CANDIDATES]
        dense = None
        pool = list(lexical_first)
        asks = precedent = 0.0
        if self._dense is not None and self.encoder is not None:
            # the normalised text as said (not repaired): the router embeds the same, once for both
            v = self.encoder.query(normalised)
            if self.models.question is not None:
                asks = self.models.question.probability(v)
            if self._precedents is not None:
                precedent = self._precedents.share(v)
            dense = np.full(len(self.entries), -1.0, dtype=np.float32)
            np.maximum.at(dense, self._owner, self._dense @ v)
            top = np.argpartition(-dense, min(CANDIDATES, len(dense) - 1))[:CANDIDATES]
            pool.extend(int(i) for i in top if int(i) not in acc)
        if not pool:
            return None
        lex = np.array([self._lexical(q, i, acc, sets) for i in pool])
        features = self._features(pool, lex, dense, len(normalised))
        features["lex_answer"] = self._answer_share(sets[0], pool)
        named = {w for w in sets[0] if w in self._key_terms}
        features["foreign_terms"] = np.array(
            [min(3, len(named - self._entry_terms[i])) / 3 for i in pool], dtype=float
        )
        if dense is not None:
            features["asks"] = np.full(len(pool), asks)
            features["precedent"] = np.full(len(pool), precedent)
        q_needs = tx.needs_of(normalised)
        q_actions = tx.actions_of(q.canon)
        unmet: list[frozenset[str]] = []
        for n, i in enumerate(pool):
            needs = q_needs - self._needs[i]
            cases = {"condition:" + c for c in self._conditions[i] if not tx.has_condition(q.canon, c)}
            actions = (
                {"action:" + a for a in q_actions}
                if q_actions and self._actions[i] and not (q_actions & self._actions[i])
                else set()
            )
            features["unmet_need"][n] = float(bool(needs))
            features["unmet_condition"][n] = float(bool(cases))
            features["unmet_action"][n] = float(bool(actions))
            unmet.append(frozenset(needs | cases | actions))
        return Candidates(pool, features, unmet)

    def _answer_share(self, words: set[str], pool: list[int]) -> np.ndarray:
        """Share of the caller's word weight (idf) found only in each candidate's answer."""
        weights = {w: self._answers.idf.get(w, 0.0) for w in words if len(w) >= 2}
        whole = sum(weights.values())
        if whole <= 0:
            return np.zeros(len(pool))
        only = [self._answer_terms[i] for i in pool]
        return np.array([sum(v for w, v in weights.items() if w in terms) / whole for terms in only])

    @staticmethod
    def _features(
        pool: list[int], lex: np.ndarray, dense: np.ndarray | None, length: int
    ) -> dict[str, np.ndarray]:
        n = len(pool)

        def gap(values: np.ndarray) -> np.ndarray:
            if len(values) < 2:
                return values.copy()
            first, second = np.sort(values)[::-1][:2]
            return values - np.where(values >= first, second, first)

        f: dict[str, np.ndarray] = {
            "lex": lex,
            "lex_gap": gap(lex),
            "lex_first": (lex >= lex.max()).astype(float) if n else lex,
            "unmet_need": np.zeros(n),
            "unmet_condition": np.zeros(n),
            "unmet_action": np.zeros(n),
            "short": np.full(n, short_feature(length)),
        }
        if dense is not None:
            own = dense[pool].astype(float)
            best = float(dense.max())
            others = np.sort(dense)[::-1]
            second = float(others[1]) if len(others) > 1 else -1.0
            f["dense"] = own
            f["dense_gap"] = own - np.where(own >= best, second, best)
            f["dense_first"] = (own >= best).astype(float)
            f["agree"] = f["dense_first"] * f["lex_first"]
        return f

    def match(self, text: str, k: int = 3) -> list[Hit]:
        found = self.candidates(text)
        if found is None:
            return []
        model = self.model
        rows = np.column_stack([found.features[name] for name in model.features])
        probability = model.probabilities(rows)  # of answering: counts what is unmet
        relevance = model.relevance(rows)  # the order of the hits
        order = sorted(range(len(found.index)), key=lambda n: (-relevance[n], found.index[n]))[:k]
        hits: list[Hit] = []
        for rank, n in enumerate(order):
            p = float(probability[n])
            confident = rank == 0 and p >= self.threshold and not found.unmet[n]
            entry_id = self.entries[found.index[n]].id
            agreed = bool(found.features.get("agree", found.features["lex_first"])[n])
            hits.append(
                Hit(entry_id, round(p, 4), confident, found.unmet[n], round(float(relevance[n]), 4), agreed)
            )
        return hits

    def explain(self, text: str) -> dict[str, Any]:
        """What the matcher made of a text (for people tuning it)."""
        normalised = chinese.normalise(text)
        repaired = self.repair_homophones(normalised)
        q = _prepare(repaired)
        return {
            "normalised": normalised,
            "repaired": repaired,
            "canonical": q.canon,
            "words": q.words,
            "needs": sorted(tx.needs_of(normalised)),
        }


def embed_entries(encoder: semantics.Encoder, entries: list[Entry]) -> dict[str, EntryVectors]:
    """The embeddings of entries: every phrasing, normalised as utterances are."""
    phrasings = [chinese.normalise(p) for e in entries for p in (e.question, *e.alternatives)]
    phrase_vecs = encoder.queries(phrasings)
    out: dict[str, EntryVectors] = {}
    at = 0
    for e in entries:
        count = 1 + len(e.alternatives)
        out[e.id] = EntryVectors(phrase_vecs[at : at + count])
        at += count
    return out
