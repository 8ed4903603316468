"""How characters sound: readings with tones, toneless and fuzzy syllables (pypinyin)."""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin

HAN = re.compile(r"[\u4e00-\u9fff]")
# Initials and finals that regional speakers and recognisers blur: zh/z, ch/c, sh/s, l/n, in/ing, en/eng.
_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"))


@lru_cache(maxsize=16384)
def readings(char: str) -> tuple[str, ...]:
    """Every reading of a character, the usual one first, tone as a digit (zhong1, zhong4)."""
    if not HAN.match(char):
        return (char,)
    found = pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)
    return tuple(dict.fromkeys(found[0])) if found and found[0] else (char,)


def toneless(syllable: str) -> str:
    return syllable.rstrip("012345")


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
def char_syllable(ch: str) -> str:
    """The usual reading of one character as a fuzzy syllable (the character itself if not Chinese)."""
    if not HAN.match(ch):
        return ch
    return fuzzy_syllable(lazy_pinyin(ch, style=Style.NORMAL)[0])


def syllables(text: str) -> list[str]:
    """One fuzzy toneless syllable per character, heteronyms resolved in context (银行 is yin hang)."""
    out: list[str] = []
    for ch, py in zip(text, lazy_pinyin(text, style=Style.NORMAL, errors=lambda s: list(s)), strict=False):
        out.append(fuzzy_syllable(py) if HAN.match(ch) else ch)
    if len(out) != len(text):  # pypinyin merged something: fall back per character
        out = [char_syllable(c) for c in text]
    return out


def term_reading(term: str) -> tuple[str, ...]:
    """A term's own reading with tones, in context (银行 is yin2 hang2, not yin2 xing2)."""
    return tuple(lazy_pinyin(term, style=Style.TONE3, neutral_tone_with_five=True))


def same_tones(heard: str, word: str) -> bool:
    """Every character of `heard` shares a reading, tone included, with the one of `word` at its place."""
    return all(set(readings(a)) & set(readings(b)) for a, b in zip(heard, word, strict=False))
