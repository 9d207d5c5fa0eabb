"""How long importing a 500-row XLSForm takes (the issue's bound: at most 1 s).

    .venv/bin/python bench/xlsform_import.py [--rows 500] [--runs 5]

The form is built here with openpyxl, as a KoBoToolbox export would be: two languages, groups of
twenty questions with a relevant, a repeat with a count, selects with choice lists and filters,
constraints and calculations. Printed: the first import (pyxform and openpyxl loaded on the way) and
the median of the following ones, each through load_survey as `langso survey import` calls it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.surveys.forms import load_survey

_HEADER = ["type", "name", "label::Vietnamese (vi)", "label::English (en)", "relevant", "constraint", "choice_filter",
           "calculation", "repeat_count", "required"]


def _survey_rows(rows: int) -> list[list[object]]:
    survey: list[list[object]] = [_HEADER, ["integer", "hh_size", "Số người", "People", None, ". > 0 and . < 30"]]
    survey += [["begin repeat", "members", "Thành viên", "Member", None, None, None, None, "${hh_size}"],
               ["text", "m_name", "Tên", "Name"], ["integer", "age", "Tuổi của ${m_name}", "Age", None, ". < 120"],
               ["end repeat"], ["calculate", "total_age", None, None, None, None, None, "sum(${age})"]]
    number = 0
    while len(survey) < rows:
        group = len(survey) // 22
        survey.append(["begin group", f"g{group}", f"Phần {group}", f"Part {group}", "${hh_size} > 0"])
        for _ in range(20):
            number += 1
            kind = ("date", "select_one prov", "select_one dist", "integer", "text", "select_multiple yn")[number % 6]
            district_filter = f"prov = ${{q{number - 1}}}" if kind.endswith("dist") else None  # the province just asked
            survey.append([kind, f"q{number}", f"Câu {number}", f"Question {number}", f"${{hh_size}} != {number % 7}",
                           ". >= 0" if kind == "integer" else None, district_filter, None, None, "yes" if number % 3 else None])
        survey.append(["end group"])
    return survey


def build(rows: int) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in _survey_rows(rows):
        sheet.append(row)
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label::Vietnamese (vi)", "label::English (en)", "prov"])
    for province in range(10):
        choices.append(["prov", f"p{province}", f"Tỉnh {province}", f"Province {province}"])
        for district in range(5):
            choices.append(["dist", f"d{province}_{district}", f"Huyện {district}", f"District {district}", f"p{province}"])
    choices.append(["yn", "yes", "Có", "Yes"])
    choices.append(["yn", "no", "Không", "No"])
    book.create_sheet("settings").append(["form_id", "form_title"])
    book["settings"].append(["bench", "Khảo sát dài"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    content = build(args.rows)
    times = []
    for _ in range(args.runs + 1):
        start = time.perf_counter()
        survey = load_survey("bench.xlsx", content)
        times.append(time.perf_counter() - start)
    print(f"{args.rows} survey rows, {len(survey.questions)} questions, {len(content) // 1024} KB")
    print(f"first import {times[0]:.3f} s (pyxform and openpyxl loaded), then median {statistics.median(times[1:]):.3f} s"
          f" over {args.runs}, max {max(times[1:]):.3f} s")


if __name__ == "__main__":
    main()
