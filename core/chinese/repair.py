"""Homophone repair: windows that are not words but sound like a known term become the term.

A recogniser that does not know 公积金 writes what it heard, 公鸡金; a caller's 低保 becomes 底保, a
dialect speaker's 社保 is heard 设保. `HomophoneRepair(terms).repair(text)` puts the term back. The
knowledge base repairs towards its terms, the router towards its rule words, the speech vocabulary
towards the hotline's words: one policy for all three.

- Windows of 2-6 Chinese characters, longest first, scanning left to right.
- Three characters or more: any reading of each character, toneless, with zh/z, ch/c, sh/s, l/n and
  in/ing blurred, must give the term's reading.
- Two characters: the usual readings with tones must give the term's (two-syllable look-alikes are
  common in ordinary speech: 学几 is not 学籍), and neither character may form a word with its outer
  neighbour (在那边 is 在+那边, not 在那 -> 在哪).
- A window that is a dictionary word or cuts through a common word the caller said is kept (in
  办过护照, 过护 sounds like 过户 but would break 护照).
- Function characters (的 了 是 不 那 …) are never changed, and a window must keep at least one of the
  term's other characters (a chance homophone of unrelated words, 喂听 / 违停, is not repaired).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from itertools import product

from core.chinese.segment import inside_word_boundaries, is_dictionary_word
from core.chinese.sound import fuzzy_syllable, readings, term_reading, toneless

MIN_LEN, MAX_LEN = 2, 6
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_HAN_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")
# Particles and deictics: a recogniser rarely gets them wrong, while they sound like half the lexicon.
FUNCTION_CHARS = frozenset("的了是不在那这到就也都把被给得着过吗呢吧啊么我你他她它们个一有和与还要")


def _loose(syllable: str) -> str:
    return fuzzy_syllable(toneless(syllable))


class HomophoneRepair:
    """Terms indexed by sound; `repair(text)` is pure and thread-safe once built."""

    def __init__(self, terms: Iterable[str], weights: Counter[str] | None = None) -> None:
        self.terms = frozenset(t for t in terms if MIN_LEN <= len(t) <= MAX_LEN and _HAN_ONLY.match(t))
        weights = weights or Counter()
        self._by_sound: dict[tuple[str, ...], str] = {}
        # The term named most often wins a shared sound; then the shorter, then any (stable order).
        for term in sorted(self.terms, key=lambda t: (-weights[t], len(t), t)):
            reading = term_reading(term)
            key = reading if len(term) == MIN_LEN else tuple(_loose(s) for s in reading)
            self._by_sound.setdefault(key, term)

    def __len__(self) -> int:
        return len(self.terms)

    def repair(self, text: str) -> str:
        """The text with mis-heard terms put back (same length: one character per syllable)."""
        if not self._by_sound:
            return text
        return _HAN_RUN.sub(lambda m: self._repair_run(m.group()), text)

    def _repair_run(self, run: str) -> str:
        inside = inside_word_boundaries(run) if len(run) > 2 else frozenset()
        out: list[str] = []
        i = 0
        while i < len(run):
            size, replacement = self._best_window(run, i, inside)
            out.append(replacement if size else run[i])
            i += size or 1
        return "".join(out)

    def _best_window(self, run: str, i: int, inside: frozenset[int]) -> tuple[int, str]:
        for size in range(min(MAX_LEN, len(run) - i), MIN_LEN - 1, -1):
            window = run[i : i + size]
            if window in self.terms:
                return size, window
            if i in inside or i + size in inside:
                continue
            term = self._sounds_like(window)
            if term is not None and _may_replace(run, i, window, term):
                return size, term
        return 0, ""

    def _sounds_like(self, window: str) -> str | None:
        if len(window) == MIN_LEN:
            return self._by_sound.get(tuple(readings(c)[0] for c in window))
        options = [tuple(dict.fromkeys(_loose(s) for s in readings(c))) for c in window]
        for key in product(*options):
            term = self._by_sound.get(key)
            if term is not None:
                return term
        return None


def _may_replace(run: str, i: int, window: str, term: str) -> bool:
    if is_dictionary_word(window):
        return False
    if any(a != b and a in FUNCTION_CHARS for a, b in zip(window, term, strict=True)):
        return False
    if not any(a == b and a not in FUNCTION_CHARS for a, b in zip(window, term, strict=True)):
        return False
    if len(window) > MIN_LEN:
        return True
    before, after = run[i - 1 : i + 1] if i else "", run[i + 1 : i + 3]
    return not (len(before) == 2 and is_dictionary_word(before)) and not (
        len(after) == 2 and is_dictionary_word(after)
    )
