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
   query covers, per channel, and rapidfuzz partial similarity; not the answer, whose share of the
   score is at most W_RANK * W_ANSWER = 0.05, so it reorders hits but never makes one confident alone),
   giving a score in 0..1;
6. `confident` needs the score over the calibrated threshold, a margin over the runner-up, no
   need in the query (a delay, a fault, a complaint, a wrong record, an odd amount, an emergency)
   that the entry does not itself speak of, no case the entry's question is limited to (在外地,
   新生儿, 退休, 丢失 …) that the caller does not mention, and no action the caller names (注册,
   注销, 提取 …) when the entry names only others: a near miss is worse than no suggestion.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from knowledge_base import text as tx

CONFIDENCE_FILE = Path(__file__).resolve().parent / "confidence.json"
DEFAULT_THRESHOLD = 0.62
DEFAULT_MARGIN = 0.04
CANDIDATES = 24

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
    score: float
    confident: bool
    needs_unmet: frozenset[str] = field(default_factory=frozenset)


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
    digits = tx.numerals_to_digits(normalised)
    canon = _canonicalise(digits)
    words = tx.content_words(canon)
    said = [w for w in dict.fromkeys(tx.content_words(digits)) if w not in words] if canon != digits else []
    return _Prepared(canon, words, tx.char_bigrams(canon), tx.pinyin_bigrams(tx.pinyin_of(canon)), said)


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
        margin: float | None = None,
        answerable: float | None = None,
    ) -> None:
        self.entries: list[Entry] = [self._entry(e) for e in entries]
        self.by_id = {e.id: e for e in self.entries}
        settings = load_confidence()
        self.threshold = threshold if threshold is not None else settings["threshold"]
        self.margin = margin if margin is not None else settings["margin"]
        # Lower bar for "probably answers it" (see dispatch.triage); never above the confident one.
        self.answerable_threshold = min(
            answerable if answerable is not None else settings["answerable"], self.threshold
        )
        vocab: set[str] = set()
        for e in self.entries:
            vocab.update(k for k in e.keywords if len(k) >= 2)
            if e.topic:
                vocab.add(e.topic)
        tx.add_words(vocab)
        self._phrasings: list[list[_Prepared]] = []
        self._needs: list[frozenset[str]] = []
        self._conditions: list[frozenset[str]] = []
        self._actions: list[frozenset[str]] = []
        word_docs, bigram_docs, pinyin_docs, answer_docs = [], [], [], []
        for e in self.entries:
            texts = [e.question, *e.alternatives, "".join(e.keywords)]
            prepared = [_prepare(tx.basic_normalise(t)) for t in texts]
            # Keywords also count one by one, so that a keyword is a word even if jieba splits it.
            prepared[-1].words = [
                *prepared[-1].words,
                *(_canonicalise(tx.basic_normalise(k)) for k in e.keywords),
            ]
            self._phrasings.append(prepared)
            word_docs.append(
                [w for p in prepared for w in (*p.words, *p.said)] + ([e.topic] if e.topic else [])
            )
            bigram_docs.append([g for p in prepared for g in p.bigrams])
            pinyin_docs.append([g for p in prepared for g in p.pinyin])
            answer_docs.append(_prepare(tx.basic_normalise(e.answer)).words if e.answer else [])
            self._needs.append(tx.needs_of(tx.basic_normalise(" ".join([e.question, *e.alternatives]))))
            self._conditions.append(tx.conditions_of(prepared[0].canon))
            self._actions.append(frozenset().union(*(tx.actions_of(p.canon) for p in prepared)))
            for p in prepared:
                vocab.update(w for w in p.words if len(w) >= 2 and tx.is_dictionary_word(w))
        self._words = _Channel(word_docs)
        self._bigrams = _Channel(bigram_docs)
        self._pinyin = _Channel(pinyin_docs)
        self._answers = _Channel(answer_docs)
        self._weighed = [
            [
                (self._words.weigh(p.words), self._bigrams.weigh(p.bigrams), self._pinyin.weigh(p.pinyin))
                for p in ps
            ]
            for ps in self._phrasings
        ]
        self._vocab = vocab | {w for c, vs in tx.SYNONYMS.items() for w in (c, *vs) if len(w) >= 2}
        self._sound: dict[tuple[str, ...], str] = {}
        for w in sorted(self._vocab, key=lambda w: (-self._words.idf.get(w, 0.0), w)):
            if all(tx._HAN.match(c) for c in w):
                self._sound.setdefault(tuple(tx.char_pinyin(c) for c in w), w)

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
        """Replace windows that are not words but sound like a knowledge-base term.

        A window never cuts through a common word the caller said: in 办过护照 the window 过护 sounds
        like 过户 but would break 护照, in 村里自己 the window 里自 sounds like 离职 but would break both
        村里 and 自己. Mis-heard terms (公鸡金, 身分正, 是用期) cover the pieces they split into whole."""
        out: list[str] = []
        inside = tx.inside_word_boundaries(text)
        i, n = 0, len(text)
        while i < n:
            for size in (4, 3, 2):
                w = text[i : i + size]
                if len(w) < size or not all(tx._HAN.match(c) for c in w):
                    continue
                if i in inside or i + size in inside:
                    continue
                if w in self._vocab:
                    out.append(w)
                    i += size
                    break
                term = self._sound.get(tuple(tx.char_pinyin(c) for c in w))
                if term is not None and not tx.is_dictionary_word(w):
                    out.append(term)
                    i += size
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def match(self, text: str, k: int = 3) -> list[Hit]:
        if not self.entries or not text.strip():
            return []
        normalised = tx.basic_normalise(text)
        if not normalised:
            return []
        q = _prepare(self.repair_homophones(normalised))
        q_words = set(q.words) | set(q.said)
        q_bigrams = set(q.bigrams)
        q_pinyin = set(q.pinyin)
        acc: dict[int, float] = {}
        self._words.score(q_words, acc, 0.5)
        self._bigrams.score(q.bigrams, acc, 0.25)
        self._pinyin.score(q.pinyin, acc, 0.25)
        self._answers.score(q_words, acc, W_ANSWER)
        if not acc:
            return []
        candidates = sorted(acc, key=acc.__getitem__, reverse=True)[: max(CANDIDATES, k)]
        scored: list[tuple[float, int]] = []
        for i in candidates:
            best = 0.0
            for p, (words, bigrams, pinyin) in zip(self._phrasings[i], self._weighed[i], strict=True):
                value = (
                    W_WORD * _Channel.covered(q_words, words)
                    + W_CHAR * _Channel.covered(q_bigrams, bigrams)
                    + W_PINYIN * _Channel.covered(q_pinyin, pinyin)
                    + W_FUZZ * fuzz.partial_ratio(p.canon, q.canon) / 100
                )
                best = max(best, value)
            scored.append((best + W_RANK * acc[i], i))
        scored.sort(reverse=True)
        q_needs = tx.needs_of(normalised)
        q_actions = tx.actions_of(q.canon)
        hits: list[Hit] = []
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        for rank, (score, i) in enumerate(scored[:k]):
            # an entry whose question is about a case (在外地补办身份证) answers a caller who says
            # nothing of that case (身份证丢了咋整) only maybe: never confidently
            unmet = (q_needs - self._needs[i]) | {
                "condition:" + c for c in self._conditions[i] if not tx.has_condition(q.canon, c)
            }
            if q_actions and self._actions[i] and not q_actions & self._actions[i]:
                unmet |= {"action:" + a for a in q_actions}
            confident = (
                rank == 0 and score >= self.threshold and score - runner_up >= self.margin and not unmet
            )
            hits.append(Hit(self.entries[i].id, round(min(1.0, max(0.0, score)), 4), confident, unmet))
        return hits

    def explain(self, text: str) -> dict[str, Any]:
        """What the matcher made of a text (for people tuning it)."""
        normalised = tx.basic_normalise(text)
        repaired = self.repair_homophones(normalised)
        q = _prepare(repaired)
        return {
            "normalised": normalised,
            "repaired": repaired,
            "canonical": q.canon,
            "words": q.words,
            "needs": sorted(tx.needs_of(normalised)),
        }


def load_confidence(path: Path = CONFIDENCE_FILE) -> dict[str, float]:
    """The calibrated thresholds; `answerable` is the lower one used by `dispatch.triage`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        threshold = float(data["threshold"])
        return {
            "threshold": threshold,
            "margin": float(data.get("margin", DEFAULT_MARGIN)),
            "answerable": float(data.get("answerable_threshold", threshold)),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {"threshold": DEFAULT_THRESHOLD, "margin": DEFAULT_MARGIN, "answerable": DEFAULT_THRESHOLD}
