"""The matcher: handwritten cases on the demo knowledge base, and the shared samples (skipped when
../shared/samples is absent): paraphrases, homophone errors from speech recognition, near misses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotline.config import REPO_ROOT
from knowledge_base import Hit, KnowledgeBase
from knowledge_base.text import basic_normalise, numerals_to_digits
from tests.conftest import SHARED

DEMO = REPO_ROOT / "knowledge_base" / "demo_kb.jsonl"
SAMPLES = SHARED / "samples"
needs_samples = pytest.mark.skipif(
    not (SAMPLES / "kb_sample.jsonl").exists(), reason=f"shared sample data not found at {SAMPLES}"
)


@pytest.fixture(scope="module")
def demo() -> KnowledgeBase:
    return KnowledgeBase.from_jsonl(DEMO)


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sample_kb() -> KnowledgeBase:
    return KnowledgeBase.from_jsonl(SAMPLES / "kb_sample.jsonl")


def test_normalisation() -> None:
    assert basic_normalise("喂，你好！我想问一下ＡＢＣ１２３") == "abc123"
    assert numerals_to_digits("我妈六十六岁了") == "我妈66岁了"
    assert numerals_to_digits("二零一五年") == "2015年"
    assert numerals_to_digits("一年级") == "1年级"
    assert numerals_to_digits("统一办理") == "统一办理"


def test_hits_are_ranked_and_bounded(demo: KnowledgeBase) -> None:
    hits = demo.match("户口本丢了怎么补办", k=3)
    assert 1 <= len(hits) <= 3
    assert all(isinstance(h, Hit) and 0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].entry_id == "demo-007" and hits[0].confident
    assert sum(h.confident for h in hits) <= 1
    assert demo.match("") == [] and demo.match("，，。") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("那个我想问一下就是户口簿找不着了咋整", "demo-007"),  # fillers, synonyms
        ("我爸到岁数退休了，住房基金里的钱能一次拿出来不", "demo-006"),  # 住房基金 = 公积金
        ("半夜家里水管子爆了，找谁来修啊", "demo-011"),
        ("想给我妈用我医保账户里的钱买药，能绑定吗", "demo-003"),
        ("在公交车上落了个包，去哪儿找", "demo-019"),
    ],
)
def test_paraphrases(demo: KnowledgeBase, text: str, expected: str) -> None:
    assert demo.match(text)[0].entry_id == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("公鸡金退休了怎么全部提取", "demo-006"),  # 公积金 -> 公鸡金
        ("户口本丢了怎么不办", "demo-007"),  # 补办 -> 不办
        ("结婚正丢了能补吗", "demo-014"),  # 证 -> 正
        ("阶提电价怎么算的", "demo-012"),  # 梯 -> 提
    ],
)
def test_homophone_errors(demo: KnowledgeBase, text: str, expected: str) -> None:
    assert demo.match(text)[0].entry_id == expected


@pytest.mark.parametrize(
    "text",
    [
        "结婚证上我的名字写错了一个字，去哪里改",  # a wrong record, not a lost certificate
        "公积金我上个月就申请退休提取了，到现在钱还没到账，帮我催一下",  # a delay
        "燃气表充了钱还是打不着火，是不是表坏了",  # a fault
        "政务服务中心代办窗口的人态度太差了，我要投诉",  # a complaint
        "帮我订一张明天去北京的火车票",  # nothing to do with the hotline
    ],
)
def test_near_misses_are_not_confident(demo: KnowledgeBase, text: str) -> None:
    hits = demo.match(text)
    assert not (hits and hits[0].confident), hits


def test_from_rows_and_mappings() -> None:
    rows = _load(DEMO)
    kb = KnowledgeBase(rows)
    assert len(kb) == len(rows) and kb.by_id["demo-001"].department == "rsj"


@needs_samples
def test_samples_paraphrase_and_asr(sample_kb: KnowledgeBase) -> None:
    queries = [q for q in _load(SAMPLES / "queries_sample.jsonl") if q["expected_kb_id"]]
    for kind, floor in (("paraphrase", 0.85), ("asr_noise", 0.9)):
        subset = [q for q in queries if q["kind"] == kind]
        right = sum(sample_kb.match(q["text"])[0].entry_id == q["expected_kb_id"] for q in subset)
        assert right / len(subset) >= floor, (kind, right, len(subset))


@needs_samples
def test_samples_near_misses_not_confident(sample_kb: KnowledgeBase) -> None:
    queries = [q for q in _load(SAMPLES / "queries_sample.jsonl") if not q["expected_kb_id"]]
    claimed = [q["text"] for q in queries if (h := sample_kb.match(q["text"])) and h[0].confident]
    assert len(claimed) / len(queries) <= 0.05, claimed
    near = [q for q in queries if q["kind"] == "near_miss"]
    confident_near = [q["text"] for q in near if any(h.confident for h in sample_kb.match(q["text"]))]
    assert near and not confident_near


@needs_samples
def test_eval_command_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    from knowledge_base import eval as kb_eval

    code = kb_eval.main(
        [
            "--kb",
            str(SAMPLES / "kb_sample.jsonl"),
            "--queries",
            str(SAMPLES / "queries_sample.jsonl"),
            "--scale",
            "500",
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    for key in (
        "top1",
        "top3",
        "false_positive_rate",
        "confident_precision",
        "confident_coverage",
        "category_accuracy",
        "department_accuracy",
        "emergency_recall",
        "p50_ms",
        "p99_ms",
    ):
        assert key in result
    assert result["top1"] >= 0.85 and result["false_positive_rate"] <= 0.05


def test_eval_and_calibrate_on_demo_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs without the shared samples: the demo KB with a few handwritten queries."""
    from knowledge_base import calibrate
    from knowledge_base import eval as kb_eval

    queries = tmp_path / "q.jsonl"
    lines = [
        {"text": "户口本找不着了咋整", "expected_kb_id": "demo-007", "kind": "paraphrase"},
        {"text": "公鸡金退休了怎么取", "expected_kb_id": "demo-006", "kind": "asr_noise"},
        {"text": "楼下烧烤店太吵了", "expected_kb_id": None, "kind": "dispatch"},
    ]
    queries.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in lines), encoding="utf-8")
    out = tmp_path / "confidence.json"
    assert calibrate.main(["--kb", str(DEMO), "--queries", str(queries), "--out", str(out)]) == 0
    assert "threshold" in json.loads(out.read_text(encoding="utf-8"))
    assert kb_eval.main(["--kb", str(DEMO), "--queries", str(queries), "--scale", "200"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["top1"] == 1.0
