"""XLSForm (.xlsx, the format of ODK and KoBoToolbox), read with pyxform."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import openpyxl
from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import xlsx_to_dict
from pyxform.xls2xform import convert

from handlers.surveys.definition import Indicator, Option, Question, QuestionType, Survey
from handlers.surveys.form_rows import (
    CODE,
    XLSFORM_TYPES,
    FormError,
    RowProblem,
    add_choice,
    expression,
    indicator,
    question,
)
from messages import render

# auto-filled by ODK on the phone: nothing a chat user answers, so a form may keep them
_METADATA = {"start", "end", "today", "deviceid", "username", "simserial", "subscriberid", "phonenumber", "audit"}
_BEGIN_GROUP = {"begin group", "begin_group"}
_END_GROUP = {"end group", "end_group"}
# columns that change what is asked or stored, which a chat cannot honour; others (appearance, media,
# required_message, other languages, …) only change how ODK shows the form, and are ignored
_UNSUPPORTED_COLUMNS = {
    "choice_filter", "calculation", "repeat_count", "default", "read_only", "trigger", "parameters",
}
_ALIASES = {
    "list name": "list_name",
    "jr:constraintMsg": "constraint_message",
    "relevance": "relevant",
    "readonly": "read_only",
    "calculate": "calculation",
    "count": "repeat_count",
    "jr:count": "repeat_count",
}
_VIETNAMESE = ("Vietnamese (vi)", "vi", "Vietnamese")
_YES = {"yes", "true", "1", "true()"}
_NO = {"no", "false", "0", "false()"}


def _canonical(row: Mapping[str, str]) -> dict[str, str]:
    """Column names as pyxform understands them, keeping any ::language suffix."""
    result: dict[str, str] = {}
    for header, value in row.items():
        base, separator, language = header.partition("::")
        result[_ALIASES.get(base, base) + separator + language] = value
    return result


def _translated(cells: Mapping[str, str], column: str) -> str:
    """The Vietnamese text if the form has it, else the untranslated column, else any language."""
    for key in (*(f"{column}::{language}" for language in _VIETNAMESE), column):
        if cells.get(key):
            return cells[key]
    return next((value for key, value in cells.items() if key.startswith(f"{column}::")), "")


def _rows(sheet: Sequence[Mapping[str, str]] | None) -> Iterable[tuple[int, Mapping[str, str]]]:
    """Non-blank rows with their number as Excel shows it: pyxform keeps inner blank rows as {} so
    that its own row numbers stay right, and the header is row 1."""
    for number, row in enumerate(sheet or (), start=2):
        if row:
            yield number, row


def _read_xlsx(filename: str, content: bytes) -> dict[str, Any]:
    try:
        return xlsx_to_dict(io.BytesIO(content))
    except PyXFormError as error:  # not a workbook, or a duplicated column header
        raise FormError(source=filename, reason="pyxform", value=str(error)) from error


def _xls_choices(filename: str, sheet: Sequence[Mapping[str, str]] | None) -> dict[str, tuple[Option, ...]]:
    lists: dict[str, list[Option]] = {}
    for number, raw in _rows(sheet):
        cells = _canonical(raw)
        try:
            for column in ("list_name", "name"):
                if not cells.get(column):
                    raise RowProblem(column, "missing_value")
            label = _translated(cells, "label")
            if not label:
                raise RowProblem("label", "missing_value")
            add_choice(lists.setdefault(cells["list_name"], []), "name", cells["name"], label)
        except RowProblem as problem:
            raise problem.at(filename, sheet="choices", row=number) from problem
    return {name: tuple(choices) for name, choices in lists.items()}


def _xls_kind(type_text: str, lists: Mapping[str, tuple[Option, ...]]) -> tuple[QuestionType, tuple[Option, ...]]:
    base, _, list_name = " ".join(type_text.split()).partition(" ")
    if base in (QuestionType.SELECT_ONE, QuestionType.SELECT_MULTIPLE) and " " not in list_name:  # not `or_other`
        if not list_name:
            raise RowProblem("type", "no_choices", type_text)
        if list_name not in lists:
            raise RowProblem("type", "unknown_choices", list_name)
        return QuestionType(base), lists[list_name]
    if type_text in XLSFORM_TYPES:
        return QuestionType(type_text), ()
    raise RowProblem("type", "unsupported_type", type_text)


def _check_columns(raw: Mapping[str, str]) -> None:
    """Named as the sheet spells them, so the author finds the column."""
    for header in raw:
        base = header.partition("::")[0]
        if _ALIASES.get(base, base) in _UNSUPPORTED_COLUMNS or base == "bind":
            raise RowProblem(header, "unsupported_column", header)


def _required(text: str) -> bool:
    if text.lower() in _YES:
        return True
    if not text or text.lower() in _NO:
        return False
    raise RowProblem("required", "bad_required", text)  # an expression: required only sometimes


def _all_of(conditions: Iterable[str]) -> str:
    parts = [condition for condition in conditions if condition]
    return parts[0] if len(parts) == 1 else " and ".join(f"({part})" for part in parts)


def _xls_questions(
    filename: str, sheet: Sequence[Mapping[str, str]] | None, lists: Mapping[str, tuple[Option, ...]]
) -> list[Question]:
    questions: list[Question] = []
    groups: list[str] = []  # the relevant of each open group, AND-ed into the questions inside it
    for number, raw in _rows(sheet):
        cells = _canonical(raw)
        try:
            type_text = cells.get("type", "")
            if not type_text:
                if cells.get("name") or _translated(cells, "label"):
                    raise RowProblem("type", "missing_value")
                continue  # a comment row, as pyxform treats it
            if type_text in _METADATA:
                continue
            if type_text in _END_GROUP:
                if not groups:
                    raise RowProblem("type", "unbalanced_group", type_text)
                groups.pop()
                continue
            if type_text in _BEGIN_GROUP:
                _check_columns(raw)
                relevant = cells.get("relevant", "")
                if relevant:  # checked here, so a mistake in it is reported on the group's own row
                    expression("relevant", relevant, [question.name for question in questions], "not_earlier")
                groups.append(relevant)
                continue
            kind, choices = _xls_kind(type_text, lists)
            _check_columns(raw)
            questions.append(
                question(
                    questions,
                    name=cells.get("name", ""),
                    kind=kind,
                    label=_translated(cells, "label"),
                    hint=_translated(cells, "hint"),
                    required=_required(cells.get("required", "")),
                    choices=choices,
                    constraint=cells.get("constraint", ""),
                    constraint_message=_translated(cells, "constraint_message"),
                    relevant=_all_of([*groups, cells.get("relevant", "")]),
                )
            )
        except RowProblem as problem:
            raise problem.at(filename, sheet="survey", row=number) from problem
    if not questions:
        raise FormError(source=filename, sheet="survey", reason="no_questions")
    return questions


def _xls_settings(filename: str, sheet: Sequence[Mapping[str, str]] | None) -> tuple[str, str, str]:
    """form_id becomes the survey code: it, not the file name, says a re-uploaded file is the same survey."""
    number, cells = next(iter(_rows(sheet)), (2, {}))
    try:
        for column in ("form_id", "form_title"):
            if not cells.get(column):
                raise RowProblem(column, "missing_value")
        code = cells["form_id"].lower().replace("_", "-")
        if not CODE.fullmatch(code):
            raise RowProblem("form_id", "bad_code", cells["form_id"])
    except RowProblem as problem:
        raise problem.at(filename, sheet="settings", row=number) from problem
    # purpose is not an XLSForm concept, so most files rely on the default text
    return code, cells["form_title"], _translated(cells, "purpose") or render("survey_default_purpose")


def _xls_indicator_rows(content: bytes) -> list[tuple[int, dict[str, object]]]:
    """The indicators sheet is ours, not XLSForm's, so pyxform's reader skips it: read it directly."""
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        sheet = next((book[name] for name in book.sheetnames if name.lower() == "indicators"), None)
        if sheet is None:
            return []
        rows = sheet.iter_rows(min_row=1, values_only=True)
        headers = [str(header).strip() if header is not None else "" for header in next(rows, ())]
        result = []
        for number, values in enumerate(rows, start=2):
            cells = {header: value for header, value in zip(headers, values, strict=False) if header and value not in (None, "")}
            if cells:
                result.append((number, cells))
        return result
    finally:
        book.close()


def _xls_indicators(filename: str, content: bytes, questions: Sequence[Question]) -> list[Indicator]:
    indicators: list[Indicator] = []
    for number, cells in _xls_indicator_rows(content):
        try:
            indicators.append(indicator(cells, questions, [indicator.code for indicator in indicators]))
        except RowProblem as problem:
            raise problem.at(filename, sheet="indicators", row=number) from problem
    return indicators


def _pyxform_check(filename: str, book: dict[str, Any]) -> None:
    """pyxform's own conversion catches what our reading does not model (unclosed groups, …). Offline:
    ODK Validate, which needs Java, is not run."""
    try:
        convert(book, warnings=[])
    except PyXFormError as error:
        raise FormError(source=filename, reason="pyxform", value=str(error)) from error


def load_xlsform(filename: str, content: bytes) -> Survey:
    book = _read_xlsx(filename, content)
    if book.get("survey") is None:
        raise FormError(source=filename, sheet="survey", reason="missing_sheet")
    code, title, purpose = _xls_settings(filename, book.get("settings"))
    questions = _xls_questions(filename, book["survey"], _xls_choices(filename, book.get("choices")))
    indicators = _xls_indicators(filename, content, questions)
    _pyxform_check(filename, book)
    return Survey(code, title, purpose, tuple(questions), tuple(indicators), source=filename)

