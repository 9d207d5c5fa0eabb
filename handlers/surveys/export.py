"""A village's answers as a table, with question and choice labels, written as XLSX or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers.surveys.definition import Survey
from handlers.surveys.engine import askable, display
from messages import label
from storage.models import Household, SurveyResponse

FORMATS = ("xlsx", "csv")


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[object]]


def table(survey: Survey, answers: Sequence[tuple[Household, SurveyResponse]], tz: ZoneInfo) -> Table:
    questions = askable(survey)
    header = [label(k) for k in ("col_household", "col_head", "col_hamlet", "col_status", "col_updated")]
    header += [q.label for q in questions]
    rows = []
    for household, response in answers:
        status = label(f"status_{response.status}")
        updated = response.updated_at.astimezone(tz).strftime("%d/%m/%Y %H:%M")
        # the household's number, never its join code: the code lets whoever holds it join and read the household
        row: list[object] = [household.id, household.head_name, household.hamlet, status, updated]
        for q in questions:
            value = response.answers.get(q.name)
            row.append(value if isinstance(value, int | float) else display(q, value) or "")
        rows.append(row)
    return Table(header, rows)


def to_bytes(data: Table, fmt: str, sheet: str) -> bytes:
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(data.header)
        writer.writerows(data.rows)
        return text.getvalue().encode("utf-8-sig")  # the BOM makes Excel read Vietnamese correctly
    from openpyxl import Workbook  # noqa: PLC0415 - ~20 MB: loaded with the first XLSX export, not at start-up

    book = Workbook()
    page = book.active
    page.title = sheet[:31]
    page.append(data.header)
    for row in data.rows:
        page.append(row)
    page.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
