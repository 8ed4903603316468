"""Spreadsheets (openpyxl): every dashboard table, the ticket search and the monthly report, for
supervisors who report upwards in Excel. Presentation only: the rows come from the domains."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_WIDTH = 60


@dataclass
class Sheet:
    title: str  # at most 31 characters (Excel's limit)
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def workbook(sheets: Sequence[Sheet]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append(list(sheet.headers))
        for row in sheet.rows:
            ws.append([_cell(v) for v in row])
        for cell in ws[1]:
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = PatternFill("solid", fgColor="0B4F8A")
            cell.alignment = Alignment(vertical="center")
        ws.freeze_panes = "A2"
        for index, header in enumerate(sheet.headers, start=1):
            values = [header, *(row[index - 1] for row in sheet.rows[:200])]
            width = max(len(str(_cell(v))) if v is not None else 0 for v in values) * 1.6 + 2
            ws.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, max(8, width))
            for cell in ws[get_column_letter(index)][1:]:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_response(sheets: Sequence[Sheet], filename: str) -> Response:
    """The workbook as a download; the Chinese file name travels RFC 5987-encoded."""
    disposition = f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return Response(workbook(sheets), media_type=XLSX, headers={"Content-Disposition": disposition})


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
