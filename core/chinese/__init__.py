"""The one Chinese-text layer every domain reads callers' words through.

- `normalise`: widths, case, punctuation, fillers and clause particles; `numerals_to_digits` (values
  parsed by cn2an, spoken digit strings such as 幺三八 written digit by digit).
- `sound`: readings of characters (with and without tones), fuzzy syllables for regional speech.
- `segment`: one jieba tokenizer of our own, words added by the domains (synonyms, terms).
- `repair`: `HomophoneRepair`, which corrects windows that sound like a known term (公鸡金 -> 公积金);
  the knowledge base, the router's rules and the speech vocabulary all use it.
"""

from core.chinese.normalise import FILLERS, fold, normalise, numerals_to_digits
from core.chinese.repair import HomophoneRepair
from core.chinese.segment import (
    add_words,
    common_parts,
    inside_word_boundaries,
    is_dictionary_word,
    segment,
    tokenizer,
    words,
)
from core.chinese.sound import (
    char_syllable,
    fuzzy_syllable,
    readings,
    same_tones,
    syllables,
    term_reading,
    toneless,
)

__all__ = [
    "FILLERS",
    "HomophoneRepair",
    "add_words",
    "char_syllable",
    "common_parts",
    "fold",
    "fuzzy_syllable",
    "inside_word_boundaries",
    "is_dictionary_word",
    "normalise",
    "numerals_to_digits",
    "readings",
    "same_tones",
    "segment",
    "syllables",
    "term_reading",
    "tokenizer",
    "toneless",
    "words",
]
