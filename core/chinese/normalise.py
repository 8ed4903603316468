"""Normalisation of what callers say: widths, case, punctuation, fillers; Chinese numerals as digits."""

from __future__ import annotations

import re
import unicodedata
import warnings

import cn2an

# Openings, hesitations and politeness that carry no request: removed before matching or routing.
FILLERS: tuple[str, ...] = (
    "喂喂喂",
    "喂喂",
    "喂",
    "你好",
    "您好",
    "我想问一下",
    "我想问下",
    "想问一下",
    "想问下",
    "我想咨询一下",
    "咨询一下",
    "请问一下",
    "请问",
    "问一下",
    "麻烦问一下",
    "麻烦你",
    "麻烦",
    "是这样的",
    "是这样",
    "那个",
    "这个",
    "就是说",
    "就是",
    "然后",
    "嗯嗯",
    "嗯",
    "呃",
    "哎呀",
    "哎",
    "唉",
    "啊",
    "呀",
    "哦",
    "噢",
    "呢",
    "呗",
    "嘛",
    "你帮我",
    "帮我",
    "我跟你说",
)

# Hesitations and particles that are also part of words (余额, 金额, 额度; 酒吧, 网吧; 哈尔滨): removed
# only where a clause starts (CLAUSE_OPENERS) or ends (CLAUSE_ENDERS), never inside a word.
CLAUSE_OPENERS: tuple[str, ...] = ("额",)
CLAUSE_ENDERS: tuple[str, ...] = ("吧", "哈")

_KEEP = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")
_FILLER_RE = re.compile("|".join(re.escape(f) for f in sorted(FILLERS, key=len, reverse=True)))
_WORD_CHAR = r"0-9a-z\u4e00-\u9fff"
_OPENER_RE = re.compile(rf"(?<![{_WORD_CHAR}])(?:{'|'.join(map(re.escape, CLAUSE_OPENERS))})+")
_ENDER_RE = re.compile(rf"(?:{'|'.join(map(re.escape, CLAUSE_ENDERS))})+(?![{_WORD_CHAR}])")
# Callers name a document by what it is for with a 的 in between: 居住的证, 结婚的证, 残疾人的证,
# 老年人的卡. The 的 goes, so the term is whole again (not before 证据, 证人, 卡车, 卡片 …).
_DE_DOCUMENT = re.compile(r"(?<=[\u4e00-\u9fff])的(?=证(?!据|人|实|明白)|卡(?!车|片|住|顿|拉))")


def fold(text: str) -> str:
    """Full width to half width, lower case, nothing but letters, digits and Chinese characters."""
    return _KEEP.sub("", unicodedata.normalize("NFKC", text).lower())


def normalise(text: str) -> str:
    """`fold`, after the fillers are gone.

    Fillers go first, while punctuation still shows where clauses start and end: a hesitation such as
    额 is only dropped at the start of a clause and a particle such as 吧 only at its end, so that 余额
    and 酒吧 stay whole."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _FILLER_RE.sub("", text)
    text = _ENDER_RE.sub("", _OPENER_RE.sub("", text))
    return _DE_DOCUMENT.sub("", _KEEP.sub("", text))


# --- numerals ---------------------------------------------------------------------------------------

# 幺 is how a digit 1 is read out in phone numbers and 110/120 (幺幺零).
_DIGIT = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4"}
_DIGIT |= {"五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_UNITS = frozenset("十百千万亿")
_NUM_RUN = re.compile(f"[{''.join(_DIGIT)}{''.join(_UNITS)}]+")
# After a single numeral character, these mean it is a quantity (一年级 stays a word otherwise).
_MEASURE = frozenset("岁年个月天日号块元点路周次层楼户亩位张趟倍分")


def _value(run: str) -> str | None:
    """A positional numeral's value by cn2an (六十六 -> 66, 三万 -> 30000); None if it is not one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = cn2an.cn2an(run.replace("幺", "一"), "normal")
        except (ValueError, KeyError):
            return None
    return str(int(value)) if float(value).is_integer() else str(value)


def numerals_to_digits(text: str, lone: bool = True) -> str:
    """Chinese numerals written as digits: 六十六岁 -> 66岁, 二零一五年 -> 2015年, 幺三八… -> 138…,
    一个 -> 1个; a lone numeral inside a word stays (统一, 第一, 万一, 一年级 -> 1年级).

    `lone=False` keeps every single numeral character (一个, 三天): what a person writes in a text
    (a transcript), where only numbers of two or more characters are usually written as digits."""

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        nxt = text[m.end() : m.end() + 1]
        if len(run) == 1 and (not lone or nxt not in _MEASURE):
            return run
        if len(run) > 1 and all(c in _UNITS for c in run):
            return run
        if run in ("万", "千", "百", "亿"):  # 万个 is not 10000个
            return run
        if all(c in _DIGIT for c in run):  # read digit by digit: phone numbers, years, 110
            return "".join(_DIGIT[c] for c in run)
        return _value(run) or run

    return _NUM_RUN.sub(repl, text)
