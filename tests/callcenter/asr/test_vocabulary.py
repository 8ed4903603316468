"""The hotline-vocabulary correction lowers the character error rate of text with homophone errors and
leaves correct text alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.asr.vocabulary import (
    Vocabulary,
    cer,
    evaluate,
    evaluate_pairs,
    hotline_vocabulary,
    read_pairs,
)

PAIRS = Path(__file__).with_name("data") / "homophones.tsv"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return hotline_vocabulary()


def test_terms_come_from_the_tree_the_routing_table_and_the_knowledge_base(vocabulary: Vocabulary) -> None:
    assert {"公积金", "低保", "停水", "噪音", "社保卡"} <= vocabulary.terms
    assert len(vocabulary) > 500


@pytest.mark.parametrize(
    ("heard", "meant"),
    [
        ("我想问一下公鸡金怎么取", "我想问一下公积金怎么取"),
        ("我的设保卡丢了", "我的社保卡丢了"),
        ("营叶执照年报", "营业执照年报"),
    ],
)
def test_homophones_of_hotline_words_are_corrected(vocabulary: Vocabulary, heard: str, meant: str) -> None:
    assert vocabulary.correct(heard) == meant


@pytest.mark.parametrize("text", ["在那边能不能办", "孩子户口不在这边", "冰箱里东西都坏了", "周六上不上班"])
def test_ordinary_speech_is_left_alone(vocabulary: Vocabulary, text: str) -> None:
    assert vocabulary.correct(text) == text


def test_correction_lowers_the_cer_of_recognised_text(vocabulary: Vocabulary) -> None:
    pairs = read_pairs(PAIRS)
    assert len(pairs) >= 20
    result = evaluate_pairs(pairs, vocabulary)
    assert result["cer_after"] < result["cer_before"] / 2
    clean = [(ref, ref) for _, ref in pairs]
    assert evaluate_pairs(clean, vocabulary)["cer_after"] == 0.0


def test_simulated_homophone_errors_are_mostly_repaired(vocabulary: Vocabulary) -> None:
    sentences = [ref for _, ref in read_pairs(PAIRS)]
    result = evaluate(sentences, vocabulary, rate=1.0)
    assert result["with_errors"] > 0
    assert result["cer_after"] < result["cer_before"]
    assert result["cer_clean_after"] == 0.0


def test_cer() -> None:
    assert cer("公积金", "公鸡金") == pytest.approx(1 / 3)
    assert cer("你好，世界", "你好世界") == 0.0


def test_the_terms_do_not_depend_on_the_words_other_parts_taught_before() -> None:
    """A knowledge base loaded earlier in the process teaches the shared tokenizer 营业执照注销 whole;
    the vocabulary built afterwards still holds 营业执照 and repairs what was misheard of it."""
    from core.chinese import add_words

    add_words(["营业执照注销", "营业执照变更登记"])
    vocabulary = hotline_vocabulary()
    assert "营业执照" in vocabulary.terms
    assert vocabulary.correct("营叶执照年报") == "营业执照年报"
