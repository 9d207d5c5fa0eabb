"""The answers as KoBoToolbox users expect them: one sheet of households, then one sheet per repeat (nested
repeats too) whose rows point at their parent row; XLSX with typed cells and links, or CSV of the
households' sheet only (as KoBo's CSV). Column names are KoBo's (formpack's): "_index", "_parent_index",
"_parent_table_name", "_submission__id", "_<geopoint>_latitude", "<select_multiple>/<choice>"."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from handlers.surveys.definition import MEDIA, Question, QuestionType, Repeat, Survey
from messages import label
from storage.models import Household, SurveyResponse

FORMATS = ("xlsx", "csv")
Naming = Literal["label", "name"]
# the address of an answer's file (an image, a voice message…), or None while it has none
MediaLink = Callable[[Mapping[str, object]], str | None]
GEO_PARTS = ("latitude", "longitude", "altitude", "precision")
# what Excel, LibreOffice and Google Sheets read as the start of a formula in a CSV cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_TITLE_MAX = 31
_NOT_IN_SHEET_TITLES = str.maketrans(dict.fromkeys("[]:*?/\\", " "))
_READERS: dict[QuestionType, Callable[[str], date | time]] = {
    QuestionType.DATE: date.fromisoformat, QuestionType.DATETIME: datetime.fromisoformat,
    QuestionType.TIME: time.fromisoformat}
_METADATA_KINDS = {"today": QuestionType.DATE, "start": QuestionType.DATETIME, "end": QuestionType.DATETIME}
_WHEN_FORMATS = ((datetime, "dd/mm/yyyy hh:mm:ss"), (date, "dd/mm/yyyy"), (time, "hh:mm:ss"))  # datetime is a date


def no_link(_media: Mapping[str, object]) -> str | None:
    return None


@dataclass(frozen=True)
class Link:
    text: str  # the file's name
    url: str


Cell = str | int | float | date | time | Link | None


@dataclass(frozen=True)
class ExportOptions:
    headers: Naming = "label"  # column headers: the questions' labels or their names
    values: Naming = "label"  # a choice as its label or its name
    link: MediaLink = no_link


LABELS = ExportOptions()  # what people read: the web console's and the chat's files


@dataclass(frozen=True)
class Submission:
    """One household's answers, with the village it is in."""

    village: str
    household: Household
    response: SurveyResponse


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


def workbook(survey: Survey, submissions: Sequence[Submission], tz: ZoneInfo,
             options: ExportOptions = LABELS) -> list[Sheet]:
    """The households' sheet first, then one per repeat, outer before inner."""
    by_name = options.headers == "name"
    scopes = _questions_by_scope(survey)
    titles: list[str] = []
    household_columns = [label(k) for k in ("col_village", "col_household", "col_head", "col_hamlet", "col_status",
                                            "col_updated")]
    main = Sheet(_sheet_title(survey.code if by_name else survey.title, titles),
                 household_columns + _headers(scopes.get((), []), options) + (["_index"] if survey.repeats else []))
    sheets = {repeat.name: Sheet(_sheet_title(repeat.name if by_name else repeat.label or repeat.name, titles),
                                 [*_headers(scopes.get((*repeat.scope, repeat.name), []), options), "_index",
                                  "_parent_table_name", "_parent_index", "_submission__id"])
              for repeat in survey.repeats.values()}
    for index, submission in enumerate(submissions, 1):
        household, response = submission.household, submission.response
        # the household's number, never its join code: the code lets whoever holds it join and read the household
        row: list[Cell] = [submission.village, household.id, household.head_name, household.hamlet,
                           label(f"status_{response.status}"),
                           response.updated_at.astimezone(tz).replace(tzinfo=None, microsecond=0)]
        row += _cells(scopes.get((), []), response.answers, options)
        if survey.repeats:
            row.append(index)
        main.rows.append(row)
        _add_instances(survey, scopes, sheets, response.answers, (), main.title, index, household.id, options)
    return [main, *sheets.values()]


def to_bytes(sheets: list[Sheet], fmt: str) -> bytes:
    """XLSX of every sheet, or CSV of the first (the households')."""
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([_csv_cell(h) for h in sheets[0].header])
        writer.writerows([_csv_cell(c) for c in row] for row in sheets[0].rows)
        return text.getvalue().encode("utf-8-sig")  # the BOM makes Excel read Vietnamese correctly
    return _xlsx(sheets)


def _questions_by_scope(survey: Survey) -> dict[tuple[str, ...], list[Question]]:
    """The columns of each sheet: every question but the notes, by the repeats it is inside."""
    scopes: dict[tuple[str, ...], list[Question]] = {}
    for question in survey.questions:
        if question.kind is not QuestionType.NOTE:
            scopes.setdefault(question.scope, []).append(question)
    return scopes


def _add_instances(
    survey: Survey, scopes: dict[tuple[str, ...], list[Question]], sheets: dict[str, Sheet],
    answers: Mapping[str, object], scope: tuple[str, ...], parent: str, parent_index: int, household: int | None,
    options: ExportOptions,
) -> None:
    """A row for each instance of the repeats directly inside `scope`, then their own repeats' rows."""
    inside: list[Repeat] = [r for r in survey.repeats.values() if r.scope == scope]
    for repeat in inside:
        sheet = sheets[repeat.name]
        instances = answers.get(repeat.name)
        for instance in instances if isinstance(instances, list) else []:
            if not isinstance(instance, dict):
                continue
            index = len(sheet.rows) + 1
            sheet.rows.append([*_cells(scopes.get((*scope, repeat.name), []), instance, options),
                               index, parent, parent_index, household])
            _add_instances(survey, scopes, sheets, instance, (*scope, repeat.name), sheet.title, index, household,
                           options)


def _headers(questions: list[Question], options: ExportOptions) -> list[str]:
    found: list[str] = []
    for q in questions:
        name = q.name if options.headers == "name" else q.label or q.name
        found.append(name)
        if q.kind is QuestionType.GEOPOINT:
            found += [f"_{name}_{part}" for part in GEO_PARTS]
        elif q.kind is QuestionType.SELECT_MULTIPLE:
            found += [f"{name}/{c.value if options.headers == 'name' else c.label}" for c in q.choices]
    return found


def _cells(questions: list[Question], answers: Mapping[str, object], options: ExportOptions) -> list[Cell]:
    found: list[Cell] = []
    for q in questions:
        value = answers.get(q.name)
        found.append(_value(q, value, options))
        if q.kind is QuestionType.GEOPOINT:
            parts: list[Cell] = [_number(p) for p in str(value).split()[:4]] if value is not None else []
            found += parts + [None] * (4 - len(parts))
        elif q.kind is QuestionType.SELECT_MULTIPLE:
            chosen = _chosen(value)
            # skipped: empty cells, not zeros (KoBo's rule: a 0 would say the household answered "no")
            found += [None if value is None else int(c.value in chosen) for c in q.choices]
    return found


def _value(q: Question, value: object, options: ExportOptions) -> Cell:
    """One answer as a cell: numbers stay numbers, dates become dates, choices their labels (or names)."""
    if value is None:
        return None
    if isinstance(value, bool):  # a calculation's true/false, as XPath writes it
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    if q.kind is QuestionType.SELECT_ONE:
        return _choice(q, str(value), options)
    if q.kind in (QuestionType.SELECT_MULTIPLE, QuestionType.RANK):
        return " ".join(_choice(q, v, options) for v in _chosen(value))  # KoBo joins with spaces
    if q.kind in MEDIA and isinstance(value, Mapping):
        name = str(value.get("filename") or value.get("ref") or "")
        url = options.link(value)
        return Link(name, url) if url else name
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return _when(q, str(value))


def _when(q: Question, text: str) -> Cell:
    """A date, time or datetime answer as a real one; any other text, or one that does not read, as it is."""
    kind = _METADATA_KINDS.get(q.metadata) if q.kind is QuestionType.METADATA else q.kind
    read = _READERS.get(kind) if kind else None
    if read is None:
        return text
    try:
        return read(text)
    except ValueError:
        return text


def _choice(q: Question, value: str, options: ExportOptions) -> str:
    return q.choice_label(value) if options.values == "label" else value


def _chosen(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split() if value is not None else []


def _number(text: str) -> Cell:
    try:
        return float(text)
    except ValueError:
        return text


def _sheet_title(text: str, taken: list[str]) -> str:
    """A title Excel accepts: none of []:*?/\\, at most 31 characters, unique whatever the case."""
    base = " ".join(text.translate(_NOT_IN_SHEET_TITLES).split()).strip("'") or "Sheet"
    title, n = base[:_SHEET_TITLE_MAX], 1
    while title.casefold() in (t.casefold() for t in taken):
        n += 1
        suffix = f" ({n})"
        title = base[:_SHEET_TITLE_MAX - len(suffix)] + suffix
    taken.append(title)
    return title


def _csv_cell(value: Cell) -> object:
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Link):
        return value.url
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # a text answer "=HYPERLINK(…)" must not run when the file is opened
    return value


def _xlsx(sheets: list[Sheet]) -> bytes:
    from openpyxl import Workbook  # noqa: PLC0415 - ~20 MB: loaded with the first XLSX export, not at start-up
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # noqa: PLC0415

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        page = book.create_sheet(sheet.title)
        for r, row in enumerate([list[Cell](sheet.header), *sheet.rows], 1):
            for c, value in enumerate(row, 1):
                if value is None:
                    continue
                cell = page.cell(r, c)
                if isinstance(value, Link):
                    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value.text)
                    cell.hyperlink = value.url
                    cell.style = "Hyperlink"
                    continue
                # control characters a chat message may hold are not allowed in an XLSX file
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value
                if cell.data_type == "f":
                    cell.data_type = "s"  # an answer "=…" is text, never a formula run when the file is opened
                number_format = next((f for kind, f in _WHEN_FORMATS if isinstance(value, kind)), None)
                if number_format:
                    cell.number_format = number_format
        page.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
