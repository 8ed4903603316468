"""Retraining the router on the hotline's own tickets (`hotline train-router`, and a daily job of
`hotline serve` when enough new labelled tickets exist).

A ticket teaches the router when its department signed it: the text the operator registered, and
the category, sub-category and department it ended with (after any returns and re-dispatches; the
operator's corrections of the suggestion are in those final values). Tickets a department returned
and nobody signed yet teach nothing. The new model is kept only when its cross-validated accuracy
is at least the current model's (the better model stays).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core import semantics
from core.departments import Department
from dispatch.models import Category, SubCategory, Ticket, TicketEvent
from dispatch.router_model import (
    SHIPPED_MODEL,
    Example,
    RouterModel,
    RouterModelError,
    base_examples,
    current_model_path,
    lexical_twin,
    train,
    trained_dir,
)
from dispatch.states import Action

log = logging.getLogger(__name__)
# A scheduled retraining needs this many labelled tickets more than the current model saw.
RETRAIN_AFTER = 200


def _signed_tickets() -> Select[tuple[str, str, str, str]]:
    signed = (
        select(TicketEvent.ticket_id)
        .where(
            TicketEvent.action == Action.SIGN.value, TicketEvent.department_id == Ticket.lead_department_id
        )
        .where(TicketEvent.ticket_id == Ticket.id)
        .exists()
    )
    return (
        select(Ticket.content, Category.name, SubCategory.name, Department.code)
        .join(Category, Category.id == Ticket.category_id)
        .join(SubCategory, SubCategory.id == Ticket.subcategory_id)
        .join(Department, Department.id == Ticket.lead_department_id)
        .where(signed)
    )


def history_examples(session: Session, limit: int = 50_000) -> list[Example]:
    """Signed tickets as training examples (the latest first, at most `limit`)."""
    rows = session.execute(_signed_tickets().order_by(Ticket.id.desc()).limit(limit))
    return [
        Example(text, cat, sub, dept, "history") for text, cat, sub, dept in rows if text and text.strip()
    ]


def labelled_count(session: Session) -> int:
    query = _signed_tickets().subquery()
    return int(session.scalar(select(func.count()).select_from(query)) or 0)


@dataclass(frozen=True)
class TrainingResult:
    kept: bool
    path: Path | None
    new: dict[str, float]
    current: dict[str, float]
    examples: int
    history: int


def _current_accuracy() -> dict[str, float]:
    try:
        return dict(RouterModel.load(current_model_path()).meta.get("cross_validated", {}))
    except RouterModelError:
        return {}


def train_router(session: Session | None, seed_only: bool = False, force: bool = False) -> TrainingResult:
    """Train on the seed corpus and tuning sets (and, unless `seed_only`, the signed tickets); keep
    the model if it is at least as good as the current one (or `force`). `seed_only` writes the
    shipped model (dispatch/models/), otherwise the data directory's."""
    history = [] if seed_only or session is None else history_examples(session)
    examples = base_examples() + history
    encoder = semantics.encoder()
    model = train(examples, encoder)
    model.meta["history"] = len(history)
    current = _current_accuracy()
    new = model.meta["cross_validated"]
    better = sum(new.values()) >= sum(current.values()) if current else True
    if not (better or force):
        return TrainingResult(False, None, new, current, len(examples), len(history))
    target = SHIPPED_MODEL if seed_only else trained_dir() / "router.npz"
    if not seed_only:
        model.save(trained_dir() / f"router-{model.version}.npz")  # every kept model, by version
    model.save(target)
    # the twin without the embedding, for when the embedding model is missing
    train(examples, None).save(lexical_twin(target))
    return TrainingResult(True, target, new, current, len(examples), len(history))


def retrain_if_due(
    session: Session, config_file: Path | None = None, database_url: str | None = None
) -> subprocess.Popen[bytes] | None:
    """The scheduled job: retrain (in a child process, at low priority) when RETRAIN_AFTER labelled
    tickets more than the current model saw exist. The child reads the same configuration file and
    database as the process that runs the job (`hotline serve --config …`)."""
    try:
        seen = int(RouterModel.load(current_model_path()).meta.get("history", 0))
    except RouterModelError:
        seen = 0
    if labelled_count(session) - seen < RETRAIN_AFTER:
        return None
    log.info("retraining the router on the hotline's tickets")
    config = ["--config", str(config_file)] if config_file is not None else []
    command = [sys.executable, "-m", "hotline.cli", *config, "train-router"]
    env = {**os.environ, "HOTLINE_DATABASE_URL": database_url} if database_url else None
    return subprocess.Popen(command, preexec_fn=lambda: os.nice(10), stdout=subprocess.DEVNULL, env=env)


def describe(result: TrainingResult) -> str:
    lines = [
        f"examples: {result.examples} (of them signed tickets: {result.history})",
        f"cross-validated, new model:     {json.dumps(result.new)}",
        f"cross-validated, current model: {json.dumps(result.current) if result.current else '-'}",
        f"kept: {result.path}" if result.kept else "not kept: the current model is better (--force keeps it)",
    ]
    return "\n".join(lines)
