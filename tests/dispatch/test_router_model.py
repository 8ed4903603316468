"""The trained router: its model file, what happens when it is missing or broken, and retraining on
the hotline's own signed tickets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import semantics
from dispatch import router_model as rm
from dispatch import schemas
from dispatch.router_training import history_examples, labelled_count, retrain_if_due
from dispatch.routing import Router
from dispatch.states import Action
from hotline.context import HotlineContext
from tests.conftest import Staff
from tests.helpers import act, dispatched


@pytest.fixture(scope="module")
def small_model() -> rm.RouterModel:
    """A model trained on every tenth line of the seed corpus (quick; enough to test the plumbing)."""
    examples = rm.load_examples(rm.SEED_CORPORA[0], "seed")[::10]
    return rm.train(examples, semantics.encoder(), folds=2)


def test_a_model_survives_the_round_trip(tmp_path: Path, small_model: rm.RouterModel) -> None:
    path = tmp_path / "router.npz"
    small_model.save(path)
    loaded = rm.RouterModel.load(path)
    assert loaded.meta["examples"] == small_model.meta["examples"]
    assert 0.0 < loaded.meta["cross_validated"]["category_accuracy"] <= 1.0
    row = rm.Featuriser(semantics.encoder(), int(loaded.meta["dim"])).row("我家停水两天了")
    p = loaded.predict(row)
    assert set(p) == {"category", "subcategory", "department"}
    assert abs(sum(p["category"].values()) - 1.0) < 1e-3
    router = Router(model=loaded)
    assert router.classify("我家停水两天了").category in ("生活求助", "投诉建议")
    # the pickle-free file format: plain arrays only, 8-bit weights with a scale per class and block
    with np.load(path, allow_pickle=False) as data:
        assert data["category.coef"].dtype == np.int8 and "category.scale" in data.files
    # the rounding keeps every decision of the model as trained
    featuriser = rm.Featuriser(semantics.encoder(), int(loaded.meta["dim"]))
    for text in ["我家停水两天了", "楼下饭店油烟很大", "社保卡丢了怎么补办", "隔壁在打架"]:
        before, after = small_model.predict(featuriser.row(text)), loaded.predict(featuriser.row(text))
        for head in before:
            assert max(before[head], key=before[head].get) == max(after[head], key=after[head].get)


def test_a_broken_or_missing_model_leaves_the_rules_serving(tmp_path: Path) -> None:
    broken = tmp_path / "router.npz"
    broken.write_bytes(b"not a model")
    with pytest.raises(rm.RouterModelError, match="分派模型"):
        rm.RouterModel.load(broken)
    router = Router(model=broken)
    assert router.model is None and router.model_error and "分派模型" in router.model_error
    # emergencies still transfer (rules), the rest waits for the operator
    assert router.classify("楼下饭店厨房着火了，烟都冒到我们家了").transfer == "119"
    assert router.classify("我家停水两天了").category == "无法判定"
    missing = Router(model=tmp_path / "nothing.npz")
    assert missing.model is None and "不存在" in (missing.model_error or "")


def test_a_model_made_for_other_features_is_refused(tmp_path: Path, small_model: rm.RouterModel) -> None:
    head = small_model.heads["category"]
    wrong = rm.RouterModel(
        {**small_model.heads, "category": rm.Head(head.classes, head.coef[:, :10], head.intercept)},
        small_model.meta,
    )
    path = tmp_path / "wrong.npz"
    wrong.save(path)
    with pytest.raises(rm.RouterModelError, match="特征维度"):
        rm.RouterModel.load(path)


def test_without_the_embedding_model_the_ngram_twin_serves() -> None:
    router = Router(encoder=None)
    assert router.model is not None and not router.model.uses_embedding
    result = router.classify("小区门口有人天天占着人行道卖菜，推婴儿车都过不去")
    assert result.category not in ("无法判定", "转110", "转119", "转120")


def test_signed_tickets_become_training_examples(ctx: HotlineContext, staff: Staff) -> None:
    signed = dispatched(ctx, staff, "停水", "sw")
    act(ctx, signed, staff.water, Action.SIGN, schemas.NoteBody())
    returned = dispatched(ctx, staff, "停水", "sw")
    act(ctx, returned, staff.water, Action.RETURN, schemas.ReasonBody(reason="不属于我单位"))
    dispatched(ctx, staff, "占道经营", "cgj")  # not signed yet: teaches nothing
    with ctx.unit_of_work() as session:
        examples = history_examples(session)
        assert labelled_count(session) == 1
        # far fewer than RETRAIN_AFTER new labelled tickets: no retraining
        assert retrain_if_due(session) is None
    assert [(e.category, e.subcategory, e.department, e.source) for e in examples] == [
        ("生活求助", "停水", "sw", "history")
    ]


def test_the_scheduled_retraining_reads_the_configuration_of_serve(
    ctx: HotlineContext,
    staff: Staff,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`hotline serve --config FILE` retrains with FILE, not the default config.toml."""
    from dispatch import router_training

    monkeypatch.setattr(router_training, "RETRAIN_AFTER", 0)  # due at once
    config = tmp_path / "other.toml"
    config.write_text("[dispatch]\nno_such_key = 1\n", encoding="utf-8")  # refused at once by the child
    with ctx.unit_of_work() as session:
        child = retrain_if_due(session, config, ctx.settings.database_url)
    assert child is not None and child.wait(60) == 2
    assert str(config) in capfd.readouterr().err
