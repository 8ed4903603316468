"""The one Chinese-text layer (core.chinese): normalisation, numerals, sound, homophone repair."""

from __future__ import annotations

import pytest

from core.chinese import HomophoneRepair, normalise, numerals_to_digits, same_tones, syllables


def test_widths_case_punctuation_and_fillers() -> None:
    assert normalise("喂，你好！我想问一下ＡＢＣ１２３") == "abc123"


def test_fillers_that_are_also_parts_of_words() -> None:
    # 额 is a hesitation only where a clause starts, 吧 a particle only where it ends
    assert normalise("额，我想问一下电费余额怎么查吧？") == "电费余额怎么查"
    assert normalise("嗯额那个金额对不对") == "金额对不对"
    assert normalise("贷款额度是多少") == "贷款额度是多少"
    assert normalise("楼下酒吧太吵了") == "楼下酒吧太吵了"
    assert normalise("是这个窗口吧，对吧") == "是窗口对"


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("我妈六十六岁了", "我妈66岁了"),
        ("二零一五年", "2015年"),
        ("一年级", "1年级"),
        ("十一月", "11月"),
        ("三万块", "30000块"),
        ("两千块", "2000块"),
        ("一万五", "15000"),
        ("一百零五户", "105户"),
        ("十个", "10个"),
        # digit strings are read digit by digit, 幺 included: phone numbers and 110
        ("幺三八一二三四五六七八", "13812345678"),
        ("幺幺零", "110"),
        ("一一九", "119"),
        # a lone numeral inside a word is a word
        ("统一办理", "统一办理"),
        ("第一次", "第1次"),
        ("万一漏气", "万一漏气"),
        ("看一下", "看一下"),
        ("万个", "万个"),
    ],
)
def test_numerals_as_digits(said: str, written: str) -> None:
    assert numerals_to_digits(said) == written


def test_numerals_as_written_in_a_transcript() -> None:
    said = "我家一个老人住三十五号楼，电话幺三八一二三四五六七八，十一月以前"
    assert numerals_to_digits(said, lone=False) == "我家一个老人住35号楼，电话13812345678，11月以前"


def test_syllables_are_read_in_context_and_blur_regional_distinctions() -> None:
    assert syllables("银行") == ["yin", "hang"]
    assert syllables("社保") == syllables("设保") == ["se", "bao"]  # sh/s merged
    assert syllables("农村") == syllables("龙村")  # l/n merged
    assert same_tones("设保", "社保") and not same_tones("学几", "学籍")


@pytest.fixture(scope="module")
def repair() -> HomophoneRepair:
    return HomophoneRepair(["公积金", "社保", "违停", "户口本", "过户", "离职", "学籍", "燃气泄漏"])


@pytest.mark.parametrize(
    ("heard", "meant"),
    [
        ("我想取公鸡金", "我想取公积金"),
        ("设保卡丢了", "社保卡丢了"),
        ("户口本丢了", "户口本丢了"),
        ("闻到然气泄露的味道", "闻到燃气泄漏的味道"),
        ("门口有车违亭", "门口有车违停"),
    ],
)
def test_misheard_terms_are_put_back(repair: HomophoneRepair, heard: str, meant: str) -> None:
    assert repair.repair(heard) == meant


@pytest.mark.parametrize(
    "said",
    [
        "喂听得见吗",  # 喂听 sounds like 违停 but keeps none of its characters
        "我办过护照",  # 过护 sounds like 过户 but would cut through 护照
        "村里自己修的路",  # 里自 sounds like 离职 but would cut through 村里 and 自己
        "孩子学几年了",  # 学几 is not 学籍: the tones differ
        "今天天气不错",
    ],
)
def test_ordinary_speech_is_left_alone(repair: HomophoneRepair, said: str) -> None:
    assert repair.repair(said) == said


def test_repair_keeps_length_and_other_characters(repair: HomophoneRepair) -> None:
    text = "ＡＢＣ，公鸡金123怎么取？"
    assert repair.repair(text) == "ＡＢＣ，公积金123怎么取？"
    assert HomophoneRepair([]).repair("公鸡金") == "公鸡金"
