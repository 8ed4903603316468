"""Segmentation: one jieba tokenizer of our own (jieba's global one is left to other packages)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import jieba

_TOKENIZER: jieba.Tokenizer | None = None
_LOCK = threading.RLock()
_BASE_FREQ: dict[str, int] = {}  # each added word's frequency in jieba's own dictionary (0: not in it)
_PENDING: list[str] = []
# A word this common (jieba's dictionary frequency) is taken to be what the caller said, not a
# recognition error: a homophone repair may not cut through it.
COMMON_WORD_FREQ = 100


def tokenizer() -> jieba.Tokenizer:
    global _TOKENIZER
    with _LOCK:
        if _TOKENIZER is None:
            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.initialize()
            _TOKENIZER = tk
            for word in _PENDING:
                _add(tk, word)
            _PENDING.clear()
        return _TOKENIZER


def _add(tk: jieba.Tokenizer, word: str) -> None:
    if word not in _BASE_FREQ and len(word) >= 2:
        _BASE_FREQ[word] = tk.FREQ.get(word, 0) or 0
        tk.add_word(word, freq=max(_BASE_FREQ[word], 2000))


def add_words(words: Iterable[str]) -> None:
    """Domain words (synonyms, hotline terms) jieba should keep whole; loaded lazily with the tokenizer."""
    with _LOCK:
        if _TOKENIZER is None:
            _PENDING.extend(words)
            return
        for w in words:
            _add(_TOKENIZER, w)


def is_dictionary_word(word: str) -> bool:
    return bool(tokenizer().FREQ.get(word))


def inside_word_boundaries(text: str) -> frozenset[int]:
    """Offsets that fall strictly inside a common word of the text (as jieba segments it)."""
    tk = tokenizer()
    inside: set[int] = set()
    for word, start, end in tk.tokenize(text):
        if end - start >= 2 and (tk.FREQ.get(word) or 0) >= COMMON_WORD_FREQ:
            inside.update(range(start + 1, end))
    return frozenset(inside)


def common_parts(word: str) -> list[str]:
    """The common words of jieba's own dictionary strictly inside a word (营业执照注销: 营业, 执照,
    营业执照, 注销). A domain word taught to the tokenizer is cut whole, so without its parts a text's
    words would depend on which other words were taught before (and in what order)."""
    freq = tokenizer().FREQ

    def common(part: str) -> bool:
        return (_BASE_FREQ.get(part, freq.get(part)) or 0) >= COMMON_WORD_FREQ

    return [
        word[i:j]
        for i in range(len(word))
        for j in range(i + 2, len(word) + 1)
        if j - i < len(word) and common(word[i:j])
    ]


def segment(text: str) -> list[str]:
    """Words for search (long words and their parts)."""
    return [w for w in tokenizer().lcut_for_search(text) if w.strip()]


def words(text: str, min_len: int = 1) -> list[str]:
    """Words as jieba cuts them (precise mode)."""
    return [w for w in tokenizer().lcut(text) if len(w) >= min_len and w.strip()]
