"""Reading a survey file — our TOML or an ODK/KoBoToolbox XLSForm (.xlsx) — into a `Survey`.

Whoever wrote the form gets every problem as a FormError naming the file, sheet, row and column, so
they can fix it in Excel without reading code. Our own row-by-row checks run before pyxform's, because
they know those positions and pyxform's messages are English and about XForms.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import openpyxl
from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import xlsx_to_dict
from pyxform.xls2xform import convert

from handlers.surveys.definition import Choice, Indicator, Kind, Question, Survey
from handlers.surveys.expr import NAME, Expr, ExprError, compile_expr
from messages import render

TOML_TYPES = tuple(kind.value for kind in Kind)
XLSFORM_TYPES = tuple(kind.value for kind in Kind if kind is not Kind.PHONE)  # ODK has no phone type
_CODE = re.compile(r"[a-z0-9-]+")


class FormError(Exception):
    """What is wrong with a form file and where. `sheet` is "" for TOML; there `table` names the array
    ("questions", "indicators") or table ("choices") that `row` (1-based) counts in."""

    def __init__(
        self,
        *,
        source: str,
        reason: str,
        value: str = "",
        sheet: str = "",
        row: int | None = None,
        column: str = "",
        table: str = "",
    ) -> None:
        super().__init__(reason, value)
        self.source = source
        self.sheet = sheet
        self.table = table
        self.row = row
        self.column = column
        self.reason = reason
        self.value = value

    def __str__(self) -> str:
        return render(
            "survey_form_error",
            source=self.source,
            sheet=self.sheet,
            table=self.table,
            row=self.row,
            column=self.column,
            reason=self.reason,
            value=self.value,
            supported=", ".join(XLSFORM_TYPES if self.sheet else TOML_TYPES),  # only XLSForms have sheets
        )


class _Problem(Exception):
    """A problem in one row; the loader that knows the row turns it into a FormError."""

    def __init__(self, column: str, reason: str, value: str = "") -> None:
        super().__init__(column, reason, value)
        self.column, self.reason, self.value = column, reason, value

    def at(self, source: str, *, sheet: str = "", table: str = "", row: int | None = None) -> FormError:
        return FormError(
            source=source, sheet=sheet, table=table, row=row, column=self.column, reason=self.reason, value=self.value
        )


def load_survey(filename: str, content: bytes) -> Survey:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".toml":
        return load_toml(filename, content)
    if suffix == ".xlsx":
        return load_xlsform(filename, content)
    raise FormError(source=filename, reason="unknown_format", value=suffix)


# ---- shared by both formats -------------------------------------------------------------------------


def _expression(column: str, text: str, known: Iterable[str], reason: str) -> Expr:
    """`known`: the questions it may refer to; any other ${name} is reported with `reason`."""
    try:
        expr = compile_expr(text)
    except ExprError as error:
        raise _Problem(column, error.reason, error.detail) from error
    allowed = set(known)
    for name in sorted(expr.references):
        if name not in allowed:
            raise _Problem(column, reason, name)
    return expr


def _question(
    earlier: Sequence[Question],
    *,
    name: str,
    kind: Kind,
    label: str,
    hint: str,
    required: bool,
    choices: tuple[Choice, ...],
    constraint: str,
    constraint_message: str,
    relevant: str,
) -> Question:
    """Checks common to both formats. A relevant or constraint may only look back: the chat asks in
    order, so a later answer does not exist yet when the question is reached."""
    if not NAME.fullmatch(name):
        raise _Problem("name", "bad_name", name)
    before = [question.name for question in earlier]
    if name in before:
        raise _Problem("name", "duplicate_name", name)
    if not label:
        raise _Problem("label", "missing_value")
    return Question(
        name=name,
        kind=kind,
        label=label,
        hint=hint,
        required=required,
        choices=choices,
        # a constraint may name its own question, as ODK allows: ${members} means the same as .
        constraint=_expression("constraint", constraint, [*before, name], "not_earlier") if constraint else None,
        constraint_message=constraint_message,
        relevant=_expression("relevant", relevant, before, "not_earlier") if relevant else None,
    )


_INDICATOR_KEYS = ("code", "title", "numerator", "denominator", "numerator_text", "denominator_text", "target")


def _indicator(fields: Mapping[str, object], questions: Sequence[Question], codes: Iterable[str]) -> Indicator:
    text = {key: str(fields.get(key, "")).strip() for key in _INDICATOR_KEYS}
    for key in _INDICATOR_KEYS:
        if not text[key]:
            raise _Problem(key, "missing_value")
    if text["code"] in codes:
        raise _Problem("code", "duplicate_code", text["code"])
    names = [question.name for question in questions]
    return Indicator(
        code=text["code"],
        title=text["title"],
        numerator=_expression("numerator", text["numerator"], names, "unknown_question"),
        denominator=_expression("denominator", text["denominator"], names, "unknown_question"),
        numerator_text=text["numerator_text"],
        denominator_text=text["denominator_text"],
        target=_percent(fields["target"]),
    )


def _percent(value: object) -> float:
    try:
        percent = float(str(value))
    except ValueError:
        percent = -1.0
    if isinstance(value, bool) or not 0 < percent <= 100:
        raise _Problem("target", "bad_target", str(value))
    return percent


# ---- our TOML -----------------------------------------------------------------------------------


_TOML_TOP = {"code", "title", "purpose", "choices", "questions", "indicators"}
_TOML_QUESTION = {
    "name", "type", "label", "hint", "required", "choices", "constraint", "constraint_message", "relevant",
}


def _toml_text(table: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise _Problem(key, "bad_value", str(value))
    if required and not value.strip():
        raise _Problem(key, "missing_value")
    return value.strip()


def _toml_tables(data: Mapping[str, object], key: str) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise _Problem(key, "bad_value", str(entries))
    return entries


def _unknown_keys(table: Mapping[str, object], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _Problem(key, "unknown_key", key)


def _toml_choices(data: Mapping[str, object]) -> dict[str, tuple[Choice, ...]]:
    lists = data.get("choices", {})
    if not isinstance(lists, dict):
        raise _Problem("choices", "bad_value", str(lists))
    return {name: _toml_choice_list(name, entries) for name, entries in lists.items()}


def _toml_choice_list(name: str, entries: object) -> tuple[Choice, ...]:
    if not isinstance(entries, list) or not entries:
        raise _Problem(name, "no_choices", name)
    choices: list[Choice] = []
    for entry in entries:
        if not (isinstance(entry, dict) and entry.keys() == {"value", "label"} and all(
            isinstance(text, str) and text.strip() for text in entry.values()
        )):
            raise _Problem(name, "bad_choice", str(entry))
        _add_choice(choices, name, entry["value"].strip(), entry["label"].strip())
    return tuple(choices)


def _add_choice(choices: list[Choice], column: str, value: str, label: str) -> None:
    if any(choice.value == value for choice in choices):
        raise _Problem(column, "duplicate_choice", value)  # selected() could not tell the two apart
    choices.append(Choice(value, label))


def _toml_question(
    entry: Mapping[str, object], lists: Mapping[str, tuple[Choice, ...]], earlier: Sequence[Question]
) -> Question:
    _unknown_keys(entry, _TOML_QUESTION)
    kind_text = _toml_text(entry, "type", required=True)
    if kind_text not in TOML_TYPES:
        raise _Problem("type", "unsupported_type", kind_text)
    kind = Kind(kind_text)
    list_name = _toml_text(entry, "choices")
    if kind in (Kind.SELECT_ONE, Kind.SELECT_MULTIPLE) and not list_name:
        raise _Problem("choices", "no_choices", "")
    if kind not in (Kind.SELECT_ONE, Kind.SELECT_MULTIPLE) and list_name:
        raise _Problem("choices", "unexpected_choices", kind_text)
    if list_name and list_name not in lists:
        raise _Problem("choices", "unknown_choices", list_name)
    required = entry.get("required", False)
    if not isinstance(required, bool):
        raise _Problem("required", "bad_value", str(required))
    return _question(
        earlier,
        name=_toml_text(entry, "name", required=True),
        kind=kind,
        label=_toml_text(entry, "label"),
        hint=_toml_text(entry, "hint"),
        required=required,
        choices=lists[list_name] if list_name else (),
        constraint=_toml_text(entry, "constraint"),
        constraint_message=_toml_text(entry, "constraint_message"),
        relevant=_toml_text(entry, "relevant"),
    )


def load_toml(filename: str, content: bytes) -> Survey:
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise FormError(source=filename, reason="bad_toml", value=str(error)) from error
    try:
        _unknown_keys(data, _TOML_TOP)
        code = _toml_text(data, "code", required=True)
        if not _CODE.fullmatch(code):
            raise _Problem("code", "bad_code", code)
        title = _toml_text(data, "title", required=True)
        purpose = _toml_text(data, "purpose", required=True)
        question_entries = _toml_tables(data, "questions")
        indicator_entries = _toml_tables(data, "indicators")
        if not question_entries:
            raise _Problem("questions", "no_questions")
    except _Problem as problem:
        raise problem.at(filename) from problem
    try:
        lists = _toml_choices(data)
    except _Problem as problem:
        raise problem.at(filename, table="choices") from problem
    questions: list[Question] = []
    for number, entry in enumerate(question_entries, start=1):
        try:
            questions.append(_toml_question(entry, lists, questions))
        except _Problem as problem:
            raise problem.at(filename, table="questions", row=number) from problem
    indicators: list[Indicator] = []
    for number, entry in enumerate(indicator_entries, start=1):
        try:
            _unknown_keys(entry, set(_INDICATOR_KEYS))
            indicators.append(_indicator(entry, questions, [indicator.code for indicator in indicators]))
        except _Problem as problem:
            raise problem.at(filename, table="indicators", row=number) from problem
    return Survey(code, title, purpose, tuple(questions), tuple(indicators), source=filename)


# ---- XLSForm ------------------------------------------------------------------------------------


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


def _xls_choices(filename: str, sheet: Sequence[Mapping[str, str]] | None) -> dict[str, tuple[Choice, ...]]:
    lists: dict[str, list[Choice]] = {}
    for number, raw in _rows(sheet):
        cells = _canonical(raw)
        try:
            for column in ("list_name", "name"):
                if not cells.get(column):
                    raise _Problem(column, "missing_value")
            label = _translated(cells, "label")
            if not label:
                raise _Problem("label", "missing_value")
            _add_choice(lists.setdefault(cells["list_name"], []), "name", cells["name"], label)
        except _Problem as problem:
            raise problem.at(filename, sheet="choices", row=number) from problem
    return {name: tuple(choices) for name, choices in lists.items()}


def _xls_kind(type_text: str, lists: Mapping[str, tuple[Choice, ...]]) -> tuple[Kind, tuple[Choice, ...]]:
    base, _, list_name = " ".join(type_text.split()).partition(" ")
    if base in (Kind.SELECT_ONE, Kind.SELECT_MULTIPLE) and " " not in list_name:  # not `or_other`
        if not list_name:
            raise _Problem("type", "no_choices", type_text)
        if list_name not in lists:
            raise _Problem("type", "unknown_choices", list_name)
        return Kind(base), lists[list_name]
    if type_text in XLSFORM_TYPES:
        return Kind(type_text), ()
    raise _Problem("type", "unsupported_type", type_text)


def _check_columns(raw: Mapping[str, str]) -> None:
    """Named as the sheet spells them, so the author finds the column."""
    for header in raw:
        base = header.partition("::")[0]
        if _ALIASES.get(base, base) in _UNSUPPORTED_COLUMNS or base == "bind":
            raise _Problem(header, "unsupported_column", header)


def _required(text: str) -> bool:
    if text.lower() in _YES:
        return True
    if not text or text.lower() in _NO:
        return False
    raise _Problem("required", "bad_required", text)  # an expression: required only sometimes


def _all_of(conditions: Iterable[str]) -> str:
    parts = [condition for condition in conditions if condition]
    return parts[0] if len(parts) == 1 else " and ".join(f"({part})" for part in parts)


def _xls_questions(
    filename: str, sheet: Sequence[Mapping[str, str]] | None, lists: Mapping[str, tuple[Choice, ...]]
) -> list[Question]:
    questions: list[Question] = []
    groups: list[str] = []  # the relevant of each open group, AND-ed into the questions inside it
    for number, raw in _rows(sheet):
        cells = _canonical(raw)
        try:
            type_text = cells.get("type", "")
            if not type_text:
                if cells.get("name") or _translated(cells, "label"):
                    raise _Problem("type", "missing_value")
                continue  # a comment row, as pyxform treats it
            if type_text in _METADATA:
                continue
            if type_text in _END_GROUP:
                if not groups:
                    raise _Problem("type", "unbalanced_group", type_text)
                groups.pop()
                continue
            if type_text in _BEGIN_GROUP:
                _check_columns(raw)
                relevant = cells.get("relevant", "")
                if relevant:  # checked here, so a mistake in it is reported on the group's own row
                    _expression("relevant", relevant, [question.name for question in questions], "not_earlier")
                groups.append(relevant)
                continue
            kind, choices = _xls_kind(type_text, lists)
            _check_columns(raw)
            questions.append(
                _question(
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
        except _Problem as problem:
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
                raise _Problem(column, "missing_value")
        code = cells["form_id"].lower().replace("_", "-")
        if not _CODE.fullmatch(code):
            raise _Problem("form_id", "bad_code", cells["form_id"])
    except _Problem as problem:
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
            cells = {header: value for header, value in zip(headers, values) if header and value not in (None, "")}
            if cells:
                result.append((number, cells))
        return result
    finally:
        book.close()


def _xls_indicators(filename: str, content: bytes, questions: Sequence[Question]) -> list[Indicator]:
    indicators: list[Indicator] = []
    for number, cells in _xls_indicator_rows(content):
        try:
            indicators.append(_indicator(cells, questions, [indicator.code for indicator in indicators]))
        except _Problem as problem:
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
