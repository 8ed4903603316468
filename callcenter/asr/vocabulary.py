"""Hotline vocabulary: correct recognised text towards the words the hotline lives on, by sound.

A recogniser that does not know 公积金 writes what it heard, 公鸡金. The terms come from the category
tree, the routing table (every word of every rule, the place names), the router's seed corpus and the
knowledge base (keywords, topics, and the words of its questions); the correction itself is the one
homophone repair of the Chinese-text layer (`core.chinese.HomophoneRepair`, its rules are there).

`python -m callcenter.asr.vocabulary --eval FILE` measures it: the character error rate of sentences
with simulated homophone errors, before and after the correction, and on the clean sentences (where
any change is a false correction). `vocabulary_correction` in `[callcenter.asr]` turns it off.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rapidfuzz.distance import Levenshtein

from core.chinese import HomophoneRepair, common_parts, readings, toneless, words
from core.chinese.repair import MIN_LEN

REPO = Path(__file__).resolve().parents[2]
CATEGORY_TREE = REPO / "dispatch" / "category_tree.toml"
ROUTING_TABLE = REPO / "dispatch" / "routing.toml"
# What callers say, written for the router's training (dispatch/models): its frequent words are the
# hotline's vocabulary too, now that the routing table keeps only the emergency rules.
SEED_CORPUS = REPO / "dispatch" / "models" / "seed_corpus.jsonl"
_HAN = re.compile(r"[\u4e00-\u9fff]+")
_HAN_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")
_SIGNAL_SPLIT = re.compile(r"[|+，,、\s]+")


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edits needed / characters of the reference (punctuation and spaces out)."""
    ref, hyp = _letters(reference), _letters(hypothesis)
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def _letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


class Vocabulary(HomophoneRepair):
    """The hotline's terms; `correct(text)` repairs mis-heard ones (pure and thread-safe once built)."""

    @classmethod
    def from_hotline(
        cls,
        kb_entries: Iterable[Any] = (),
        category_tree: Path = CATEGORY_TREE,
        routing_table: Path = ROUTING_TABLE,
        corpus: Path = SEED_CORPUS,
    ) -> Vocabulary:
        """Terms of the category tree, the routing table, the router's seed corpus and knowledge-base
        entries (objects with question / alternatives / keywords / topic, as `knowledge_base.Entry` or
        the database rows)."""
        weights: Counter[str] = Counter()
        weights.update(_toml_terms(category_tree))
        weights.update(_toml_terms(routing_table))
        weights.update(_corpus_terms(corpus))
        weights.update(_kb_terms(kb_entries))
        return cls(weights, weights)

    def correct(self, text: str) -> str:
        return self.repair(text)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _toml_terms(path: Path) -> list[str]:
    """Every Chinese word in a TOML file's string values, rule syntax (A|B+C, !X, @group, re:) taken apart."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    terms: list[str] = []
    for value in _strings(data):
        if value.startswith("re:"):
            continue
        terms.extend(p.lstrip("!") for p in _SIGNAL_SPLIT.split(value) if p and not p.startswith("@"))
    terms = [t for t in terms if _HAN_ONLY.match(t)]
    # a long name's words are terms too (噪音扰民: 噪音, 扰民)
    return terms + [w for t in terms if len(t) > 3 for w in _words(t)]


def _words(text: str) -> list[str]:
    """A text's words and the common words inside its long ones: 营业执照注销, taught to the tokenizer
    by a knowledge base loaded earlier, still yields 营业执照 (the terms do not depend on what was
    loaded before)."""
    found = words(text, MIN_LEN)
    return found + [part for w in found if len(w) > 3 for part in common_parts(w) if len(part) >= MIN_LEN]


def _corpus_terms(path: Path, min_count: int = 2) -> list[str]:
    """Words said at least `min_count` times in the corpus (lines written as recognition errors left
    out: their mis-heard words must not become terms)."""
    if not path.exists():
        return []
    counts: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("voice") == "asr_error":
            continue
        counts.update(w for w in _words(row["text"]) if _HAN_ONLY.match(w))
    return [w for w, n in counts.items() if n >= min_count]


def _kb_terms(entries: Iterable[Any]) -> list[str]:
    terms: list[str] = []
    for entry in entries:
        terms.extend(entry.keywords or ())
        if getattr(entry, "topic", None):
            terms.append(entry.topic)
        for sentence in (entry.question, *(entry.alternatives or ())):
            terms.extend(_words(sentence))
    return terms


# --- measuring ------------------------------------------------------------------------------------


def homophone_pool(texts: Iterable[str]) -> dict[str, list[str]]:
    """Characters of ordinary text grouped by toneless reading: the substitutes a recogniser might pick."""
    pool: dict[str, set[str]] = defaultdict(set)
    for text in texts:
        for char in "".join(_HAN.findall(text)):
            pool[toneless(readings(char)[0])].add(char)
    return {key: sorted(chars) for key, chars in pool.items()}


def simulate_errors(
    sentence: str, vocabulary: Vocabulary, pool: dict[str, list[str]], rng: random.Random, rate: float
) -> str:
    """Each hotline term in the sentence gets one character swapped for a homophone with probability
    `rate`, the way a recogniser without the term writes it (公积金 -> 公鸡金)."""
    out = sentence
    for term in sorted(vocabulary.terms, key=lambda t: (-len(t), t)):
        if len(term) < 3 or term not in out or rng.random() >= rate:
            continue
        pos = rng.randrange(len(term))
        choices = [c for c in pool.get(toneless(readings(term[pos])[0]), []) if c != term[pos]]
        if choices:
            out = out.replace(term, term[:pos] + rng.choice(choices) + term[pos + 1 :], 1)
    return out


def corpus_cer(references: list[str], hypotheses: list[str]) -> float:
    """Edits over all sentences / characters of all references (long sentences weigh more)."""
    pairs = [(_letters(r), _letters(h)) for r, h in zip(references, hypotheses, strict=True)]
    edits = sum(Levenshtein.distance(r, h) for r, h in pairs)
    return round(edits / max(1, sum(len(r) for r, _ in pairs)), 4)


def evaluate(
    sentences: list[str], vocabulary: Vocabulary, seed: int = 12345, rate: float = 0.5
) -> dict[str, Any]:
    """Simulated homophone errors on correct sentences: CER before and after the correction, and the
    CER the correction adds to the untouched sentences (false corrections)."""
    rng = random.Random(seed)
    pool = homophone_pool(sentences)
    noisy = [simulate_errors(s, vocabulary, pool, rng, rate) for s in sentences]
    return {
        "sentences": len(sentences),
        "with_errors": sum(n != s for n, s in zip(noisy, sentences, strict=True)),
        "cer_before": corpus_cer(sentences, noisy),
        "cer_after": corpus_cer(sentences, [vocabulary.correct(s) for s in noisy]),
        "cer_clean_after": corpus_cer(sentences, [vocabulary.correct(s) for s in sentences]),
        "terms": len(vocabulary),
    }


def evaluate_pairs(pairs: list[tuple[str, str]], vocabulary: Vocabulary) -> dict[str, Any]:
    """(recognised, reference) pairs: CER without and with the correction."""
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    return {
        "pairs": len(pairs),
        "cer_before": corpus_cer(refs, hyps),
        "cer_after": corpus_cer(refs, [vocabulary.correct(h) for h in hyps]),
    }


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Tab-separated `recognised<TAB>reference` lines; `#` starts a comment line."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r[0].strip(), r[1].strip()) for r in rows if len(r) == 2 and not r[0].startswith("#")]


def _read_sentences(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_kb_entries(path: Path) -> list[SimpleNamespace]:
    """Knowledge-base entries of a .jsonl export, with the fields the vocabulary reads."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            entries.append(
                SimpleNamespace(
                    question=record["question"],
                    alternatives=record.get("alternatives") or [],
                    keywords=record.get("keywords") or [],
                    topic=record.get("topic"),
                )
            )
    return entries


def hotline_vocabulary(kb_path: Path | None = None) -> Vocabulary:
    return Vocabulary.from_hotline(read_kb_entries(kb_path or REPO / "knowledge_base" / "demo_kb.jsonl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the hotline-vocabulary correction (CER).")
    parser.add_argument("--eval", type=Path, help="correct sentences (.txt lines, or .jsonl with 'text')")
    parser.add_argument("--pairs", type=Path, help="recognised<TAB>reference lines")
    parser.add_argument("--kb", type=Path, help="knowledge base (.jsonl); default the demo one")
    parser.add_argument("--rate", type=float, default=0.5, help="share of hotline terms made wrong")
    args = parser.parse_args(argv)
    vocabulary = hotline_vocabulary(args.kb)
    result: dict[str, Any] = {}
    if args.eval:
        result["simulated"] = evaluate(_read_sentences(args.eval), vocabulary, rate=args.rate)
    if args.pairs:
        result["pairs"] = evaluate_pairs(read_pairs(args.pairs), vocabulary)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
