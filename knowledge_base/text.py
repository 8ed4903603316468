"""Text handling of the matcher on top of the shared Chinese layer (`core.chinese`): content words,
synonyms, needs, conditions and actions."""

from __future__ import annotations

import re

from core.chinese import add_words, segment
from core.chinese.sound import HAN
from knowledge_base.lexicon import (
    ACTIONS,
    CONDITIONS,
    NEED_PATTERNS,
    STOP_WORDS,
    SYNONYMS,
    WORRY_MARKERS,
)

# jieba keeps every synonym whole, so a variant is one word of the text.
add_words(w for canonical, variants in SYNONYMS.items() for w in (canonical, *variants))


def content_words(text: str) -> list[str]:
    return [w for w in segment(text) if w not in STOP_WORDS and not (len(w) == 1 and not w.isdigit())]


# --- synonyms -------------------------------------------------------------------------------------

_VARIANT_TO_CANONICAL: dict[str, str] = {}
for _canon, _variants in SYNONYMS.items():
    for _v in _variants:
        _VARIANT_TO_CANONICAL.setdefault(_v, _canon)
_SYN_RE = re.compile(
    "|".join(re.escape(v) for v in sorted([*_VARIANT_TO_CANONICAL, *SYNONYMS], key=len, reverse=True))
)


def canonical_terms(text: str) -> list[str]:
    """Canonical terms of every synonym group whose variant (or canonical form) appears in the text."""
    found: list[str] = []
    for m in _SYN_RE.finditer(text):
        w = m.group(0)
        found.append(_VARIANT_TO_CANONICAL.get(w, w))
    return found


# --- needs ----------------------------------------------------------------------------------------

_NEED_RES = {need: re.compile("|".join(patterns)) for need, patterns in NEED_PATTERNS.items()}
_WORRY_RE = re.compile("|".join(map(re.escape, WORRY_MARKERS)))
WORRY_WINDOW = 8


def needs_of(text: str) -> frozenset[str]:
    """Needs beyond "how to" that the text expresses: delay, fault, complaint, wrong record, anomaly,
    emergency. A need said as a worry ("怕冰柜里的东西放坏了", "万一漏气") is not one."""
    found: set[str] = set()
    for need, rx in _NEED_RES.items():
        for m in rx.finditer(text):
            if not _WORRY_RE.search(text, max(0, m.start() - WORRY_WINDOW), m.start()):
                found.add(need)
                break
    return frozenset(found)


def char_bigrams(text: str) -> list[str]:
    han = "".join(c for c in text if HAN.match(c) or c.isdigit())
    return [han[i : i + 2] for i in range(len(han) - 1)]


def pinyin_bigrams(syllables: list[str]) -> list[str]:
    syl = [s for s in syllables if s.isalpha()]
    return [syl[i] + "_" + syl[i + 1] for i in range(len(syl) - 1)]


# --- conditions -----------------------------------------------------------------------------------


def conditions_of(canonical: str) -> frozenset[str]:
    """The cases (canonical terms of `CONDITIONS`) a canonical question is limited to."""
    return frozenset(c for c in CONDITIONS if c in canonical)


def has_condition(canonical: str, condition: str) -> bool:
    return any(w in canonical for w in (condition, *CONDITIONS[condition]))


def actions_of(canonical: str) -> frozenset[str]:
    """The actions (keys of `ACTIONS`) a canonical text names outright."""
    return frozenset(a for a, said in ACTIONS.items() if any(w in canonical for w in said))
