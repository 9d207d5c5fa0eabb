"""XLSForm (.xlsx, .xls: the format of ODK and KoBoToolbox), read through pyxform's own model.

pyxform turns the workbook into its survey tree (settings defaults from the file name, aliases, older
type names, translations, or_other, default_language…) and converts it to an XForm, which runs all its
checks: whatever it refuses, we refuse with its message made short. `xlsform_tree` then walks the tree
into our questions; our own checks are only for what a chat cannot do. The indicators sheet is ours.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import openpyxl
import xlrd
from pyxform.builder import create_survey_element_from_dict
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import Definition, DefinitionData, SupportedFileTypes, definition_to_dict

from handlers.surveys.definition import Indicator, Question, Survey
from handlers.surveys.form_rows import FormError, RowProblem, indicator
from handlers.surveys.xlsform_tree import Tree, walk
from messages import render

_ROW = re.compile(r"\[row\s*:\s*(\d+)\]\s*")
_UNKNOWN_TYPE = re.compile(r"Unknown question type '([^']*)'")
_SHEETS = ("choices", "settings", "external_choices", "entities", "survey")
_MESSAGE_LIMIT = 240  # the whole error stays within three lines of a terminal or a chat


def _short(message: str) -> tuple[int | None, str, str]:
    """pyxform's message as (row, sheet, text): one line, without its links."""
    row = _ROW.search(message)
    text = " ".join(_ROW.sub("", message).split())
    text = re.split(r"\s*(?:Learn more|See|More info)\b[^.]*https?://", text)[0]
    text = re.sub(r"https?://\S+", "", text).strip()
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1].rstrip() + "…"
    lowered = message.lower()
    sheet = next((name for name in _SHEETS if f"{name} sheet" in lowered or f"'{name}'" in lowered), "")
    if row and not sheet:
        sheet = "survey"
    return (int(row.group(1)) if row else None), sheet, text


def _pyxform_error(filename: str, error: Exception, book: DefinitionData | None) -> FormError:
    message = str(error) or type(error).__name__
    row, sheet, text = _short(message)
    column = ""
    unknown = _UNKNOWN_TYPE.search(message)
    if unknown and book and row is None:  # pyxform does not say where: the first row of that type
        types = [str(cells.get("type", "")).strip() for cells in book.survey or ()]
        if unknown.group(1) in types:
            sheet, row, column = "survey", types.index(unknown.group(1)) + 2, "type"
    return FormError(source=filename, reason="pyxform", value=text, sheet=sheet, row=row, column=column)


def _pyxform(filename: str, content: bytes) -> tuple[DefinitionData, dict[str, Any]]:
    """The workbook's sheets and pyxform's survey tree, once pyxform has made an XForm of it (ODK
    Validate, which needs Java, is not run). Nothing pyxform or openpyxl says reaches the terminal."""
    path = PurePath(filename)
    book = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's UserWarnings (data validation, headers…)
            book = definition_to_dict(
                Definition(io.BytesIO(content), SupportedFileTypes(path.suffix.lower()), path.stem),
                file_type=path.suffix.lower(),
            )
            tree = workbook_to_json(book, fallback_form_name=book.fallback_form_name, warnings=[])
            create_survey_element_from_dict(tree).to_xml(validate=False, warnings=[])
    # pyxform is given a file from outside: any of its failures is a form it does not accept
    except Exception as error:
        raise _pyxform_error(filename, error, book) from error
    return book, tree


def _code(id_string: str) -> str:
    """pyxform's id_string (settings form_id, else the file name) as a survey code: it, not the file
    name, says a re-uploaded file is the same survey. Always some code, whatever the characters."""
    plain = unicodedata.normalize("NFKD", id_string.replace("đ", "d").replace("Đ", "D"))
    code = re.sub(r"[^a-z0-9]+", "-", plain.encode("ascii", "ignore").decode().lower()).strip("-")
    return code or "form"


def _setting(settings: Sequence[Mapping[str, str]] | None, column: str) -> str:
    """A column of the settings sheet pyxform does not know (`purpose`), in Vietnamese when translated."""
    cells = next(iter(settings or ()), {})
    texts = {key.partition("::")[2] or key.partition(":")[2]: value for key, value in cells.items()
             if key.split(":", 1)[0].strip().lower() == column and value}
    return next((texts[key] for key in sorted(texts, key=lambda key: key != "" and "vi" not in key.lower())), "")


def _indicator_rows(filename: str, content: bytes) -> list[tuple[int, dict[str, object]]]:
    """The indicators sheet is ours, not XLSForm's, so pyxform's reader skips it: read it directly."""
    rows = _xls_sheet(content) if PurePath(filename).suffix.lower() == ".xls" else _xlsx_sheet(content)
    headers = [str(header).strip() if header is not None else "" for header in next(rows, ())]
    result = []
    for number, values in enumerate(rows, start=2):
        cells = {header: value for header, value in zip(headers, values, strict=False) if header and value not in (None, "")}
        if cells:
            result.append((number, cells))
    return result


def _indicators_sheet(names: Sequence[str]) -> str | None:
    return next((name for name in names if name.strip().lower() == "indicators"), None)


def _xlsx_sheet(content: bytes) -> Iterator[Sequence[object]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        name = _indicators_sheet(book.sheetnames)
        if name is not None:
            yield from book[name].iter_rows(min_row=1, values_only=True)
    finally:
        book.close()


def _xls_sheet(content: bytes) -> Iterator[Sequence[object]]:
    """An .xls (older forms; openpyxl cannot open it) through xlrd, which pyxform reads it with."""
    book = xlrd.open_workbook(file_contents=content, on_demand=True)
    try:
        name = _indicators_sheet(book.sheet_names())
        if name is not None:
            sheet = book.sheet_by_name(name)
            yield from (sheet.row_values(number) for number in range(sheet.nrows))
    finally:
        book.release_resources()


def _indicators(filename: str, content: bytes, known: Sequence[Question]) -> list[Indicator]:
    """An indicator may use any question of the form (sum() and count() over a repeat's questions)."""
    indicators: list[Indicator] = []
    for number, cells in _indicator_rows(filename, content):
        try:
            indicators.append(indicator(cells, known, [indicator.code for indicator in indicators]))
        except RowProblem as problem:
            raise problem.at(filename, sheet="indicators", row=number) from problem
    return indicators


def load_xlsform(filename: str, content: bytes, media: Mapping[str, bytes] | None = None) -> Survey:
    """`media`: the files the form names (select_one_from_file's lists), by file name."""
    book, tree = _pyxform(filename, content)
    walked = walk(Tree(filename, tree, book, media or {}))
    indicators = _indicators(filename, content, walked.questions)
    return Survey(
        code=_code(str(tree.get("id_string") or "")),
        title=str(tree.get("title") or tree.get("id_string") or ""),
        purpose=_setting(book.settings, "purpose") or render("survey_default_purpose"),
        questions=walked.questions,
        indicators=tuple(indicators),
        source=filename,
        items=walked.items,
        languages=walked.languages,
        instances=walked.instances,
    )
