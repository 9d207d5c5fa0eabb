"""XLSForm workbooks built in a test, as KoBoToolbox or Excel would save them (no binary fixtures)."""

from __future__ import annotations

from pathlib import Path

import openpyxl


def xlsform(
    tmp_path: Path,
    survey: list[list[object]],
    choices: list[list[object]] | None = None,
    settings: list[list[object]] | None = None,
    indicators: list[list[object]] | None = None,
    *,
    sheets: dict[str, list[list[object]]] | None = None,
) -> bytes:
    """A workbook as KoBoToolbox or Excel would save it; an empty list in `survey` is a blank row.
    `settings=[]`: no settings sheet; `sheets`: any other sheet (external_choices…)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for number, row in enumerate(survey, start=1):
        for column, value in enumerate(row, start=1):
            sheet.cell(number, column, value)  # blank rows get no cells at all, as in a saved file
    default = [["form_id", "form_title"], ["ho_gd", "Hộ gia đình"]]
    extra = {"choices": choices, "settings": default if settings is None else settings, "indicators": indicators}
    for name, rows in (extra | (sheets or {})).items():
        if rows:
            added = book.create_sheet(name)
            for row in rows:
                added.append(row)
    path = tmp_path / "ho.xlsx"
    book.save(path)
    return path.read_bytes()
