"""Text handling for the matcher: normalisation, Chinese numerals, pinyin, segmentation, synonyms."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import jieba
from pypinyin import Style, lazy_pinyin

from knowledge_base.lexicon import (
    ACTIONS,
    CLAUSE_ENDERS,
    CLAUSE_OPENERS,
    CONDITIONS,
    FILLERS,
    NEED_PATTERNS,
    STOP_WORDS,
    SYNONYMS,
    WORRY_MARKERS,
)

_HAN = re.compile(r"[\u4e00-\u9fff]")
_KEEP = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")
_FILLER_RE = re.compile("|".join(re.escape(f) for f in sorted(FILLERS, key=len, reverse=True)))
_WORD_CHAR = r"0-9a-z\u4e00-\u9fff"
_OPENER_RE = re.compile(rf"(?<![{_WORD_CHAR}])(?:{'|'.join(map(re.escape, CLAUSE_OPENERS))})+")
_ENDER_RE = re.compile(rf"(?:{'|'.join(map(re.escape, CLAUSE_ENDERS))})+(?![{_WORD_CHAR}])")

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUM_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万]+")
# After a single numeral character, these mean it is a quantity (一年级 stays a word otherwise).
_MEASURE = "岁年个月天日号块元点路周次层楼户亩岁位张趟倍分"


def _run_value(run: str) -> int | None:
    """Value of a run of Chinese numerals: 六十六 -> 66, 二零一五 -> 2015, 三万 -> 30000."""
    if all(c in _DIGITS for c in run):
        return int("".join(str(_DIGITS[c]) for c in run))
    total, section, digit = 0, 0, 0
    for c in run:
        if c in _DIGITS:
            digit = _DIGITS[c]
        elif c == "万":
            section = (section + digit) * 10000
            total += section
            section, digit = 0, 0
        else:
            unit = _UNITS[c]
            section += (digit or 1) * unit
            digit = 0
    return total + section + digit


def numerals_to_digits(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        nxt = text[m.end() : m.end() + 1]
        if len(run) == 1 and run not in _UNITS and nxt not in _MEASURE:
            return run
        if run in ("万", "千", "百") or (len(run) == 1 and run in _UNITS and nxt not in _MEASURE):
            return run
        value = _run_value(run)
        return run if value is None else str(value)

    return _NUM_RUN.sub(repl, text)


def basic_normalise(text: str) -> str:
    """Full width to half width, lower case, no punctuation or spaces, no fillers.

    Fillers go first, while punctuation still shows where clauses start and end: a hesitation such as
    额 is only dropped at the start of a clause and a particle such as 吧 only at its end, so that 余额
    and 酒吧 stay whole."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _FILLER_RE.sub("", text)
    text = _ENDER_RE.sub("", _OPENER_RE.sub("", text))
    return _DE_DOCUMENT.sub("", _KEEP.sub("", text))


# Callers name a document by what it is for with a 的 in between: 居住的证, 结婚的证, 残疾人的证,
# 老年人的卡. The 的 goes, so the term is whole again (not before 证据, 证人, 卡车, 卡片 …).
_DE_DOCUMENT = re.compile(r"(?<=[\u4e00-\u9fff])的(?=证(?!据|人|实|明白)|卡(?!车|片|住|顿|拉))")


# --- pinyin ---------------------------------------------------------------------------------------

_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"))


def fuzzy_syllable(s: str) -> str:
    """Toneless pinyin, with the distinctions regional speakers and recognisers blur merged."""
    for a, b in _FUZZY:
        if s.startswith(a):
            s = b + s[len(a) :]
            break
    if s.startswith("l"):
        s = "n" + s[1:]
    if s.endswith("ng") and len(s) > 2 and s[-3] in "ie":
        s = s[:-1]
    return s


@lru_cache(maxsize=65536)
def char_pinyin(ch: str) -> str:
    if not _HAN.match(ch):
        return ch
    return fuzzy_syllable(lazy_pinyin(ch, style=Style.NORMAL)[0])


def pinyin_of(text: str) -> list[str]:
    """One fuzzy toneless syllable per character (heteronyms resolved in context by pypinyin)."""
    out: list[str] = []
    for ch, py in zip(text, lazy_pinyin(text, style=Style.NORMAL, errors=lambda s: list(s)), strict=False):
        out.append(fuzzy_syllable(py) if _HAN.match(ch) else ch)
    if len(out) != len(text):  # pypinyin merged something: fall back per character
        out = [char_pinyin(c) for c in text]
    return out


# --- segmentation ---------------------------------------------------------------------------------

_TOKENIZER: jieba.Tokenizer | None = None
_LOCK = threading.Lock()
_ADDED: set[str] = set()


def tokenizer() -> jieba.Tokenizer:
    """A jieba tokenizer of our own (the global one is left alone for other packages)."""
    global _TOKENIZER
    with _LOCK:
        if _TOKENIZER is None:
            import logging

            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.initialize()
            _TOKENIZER = tk
            for canonical, variants in SYNONYMS.items():
                for w in (canonical, *variants):
                    _add(tk, w)
        return _TOKENIZER


def _add(tk: jieba.Tokenizer, word: str) -> None:
    if word not in _ADDED and len(word) >= 2:
        tk.add_word(word, freq=max(tk.FREQ.get(word, 0) or 0, 2000))
        _ADDED.add(word)


def add_words(words: Iterable[str]) -> None:
    tk = tokenizer()
    with _LOCK:
        for w in words:
            _add(tk, w)


def is_dictionary_word(word: str) -> bool:
    return bool(tokenizer().FREQ.get(word))


# A word this common (jieba's dictionary frequency) is taken to be what the caller said, not a
# recognition error: a homophone repair may not cut through it.
COMMON_WORD_FREQ = 100


def inside_word_boundaries(text: str) -> frozenset[int]:
    """Offsets that fall strictly inside a common word of the text (as jieba segments it)."""
    tk = tokenizer()
    inside: set[int] = set()
    for word, start, end in tk.tokenize(text):
        if end - start >= 2 and (tk.FREQ.get(word) or 0) >= COMMON_WORD_FREQ:
            inside.update(range(start + 1, end))
    return frozenset(inside)


def segment(text: str) -> list[str]:
    return [w for w in tokenizer().lcut_for_search(text) if w.strip()]


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
    han = "".join(c for c in text if _HAN.match(c) or c.isdigit())
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
