"""Making the monthly report's files and finding them again: `hotline report --month 2026-11`, the
scheduler on the 1st, and the reports page all come here."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.errors import NotFound
from dispatch.county_map import CountyMap
from sla.evaluation import previous_month
from sla.report.documents import pdf, xlsx
from sla.report.figures import MonthlyFigures, monthly_figures

log = logging.getLogger(__name__)
PREFIX = "月度分析报告-"
_NAME = re.compile(rf"^{PREFIX}(\d{{4}}-\d{{2}})\.(pdf|xlsx)$")


@dataclass(frozen=True)
class ReportFile:
    month: str
    kind: str  # pdf | xlsx
    path: Path
    size: int
    made_at: datetime


def folder_of(ctx: Any) -> Path:
    return ctx.settings.resolve(ctx.settings.sla.report.folder)


def figures(session: Session, ctx: Any, first: date) -> MonthlyFigures:
    sla = ctx.settings.sla
    return monthly_figures(session, sla, ctx.calendar, ctx.gazetteer, first, ctx.clock.now())


def make_report(session: Session, ctx: Any, first: date) -> list[ReportFile]:
    """Write the month's PDF and XLSX (each atomically: a reader never sees half a file)."""
    f = figures(session, ctx, first)
    folder = folder_of(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, content in (("pdf", pdf(f, ctx.settings.sla.report.font, _map(ctx))), ("xlsx", xlsx(f))):
        target = folder / f"{PREFIX}{first:%Y-%m}.{kind}"
        partial = target.with_suffix(f".{kind}.part")
        partial.write_bytes(content)
        os.replace(partial, target)
        written.append(_file(target))
    return written


def _map(ctx: Any) -> CountyMap | None:
    """The county's outline for the report's map; a broken map file leaves the map out, not the report."""
    try:
        return ctx.county_map
    except ValueError as exc:
        log.error("the monthly report is made without its map: %s", exc)
        return None


def _file(path: Path) -> ReportFile:
    match = _NAME.match(path.name)
    assert match is not None
    stat = path.stat()
    return ReportFile(
        match.group(1), match.group(2), path, stat.st_size, datetime.fromtimestamp(stat.st_mtime)
    )


def reports(ctx: Any) -> list[ReportFile]:
    """The reports made so far, newest month first."""
    folder = folder_of(ctx)
    if not folder.is_dir():
        return []
    files = [_file(p) for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(files, key=lambda r: (r.month, r.kind), reverse=True)


def report_file(ctx: Any, name: str) -> ReportFile:
    """One report file by its name; anything else (a path, another file) is not found."""
    match = _NAME.match(name)
    path = folder_of(ctx) / name
    if match is None or not path.is_file():
        raise NotFound(f"no report {name!r}", "报告不存在")
    return _file(path)


def make_last_month_if_missing(ctx: Any) -> list[ReportFile]:
    """The scheduler's job: on and after the 1st, last month's report when it is not there yet."""
    first = previous_month(ctx.clock.now().date().replace(day=1))
    have = {(r.month, r.kind) for r in reports(ctx)}
    if {(f"{first:%Y-%m}", "pdf"), (f"{first:%Y-%m}", "xlsx")} <= have:
        return []
    with ctx.unit_of_work() as session:
        return make_report(session, ctx, first)
