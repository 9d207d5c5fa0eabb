"""Our own survey format: a TOML file (messages/surveys/*.toml)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.surveys.definition import Indicator, Option, Question, QuestionType, Survey
from handlers.surveys.form_rows import (
    CODE,
    INDICATOR_KEYS,
    INDICATOR_OPTIONAL,
    TOML_TYPES,
    FormError,
    RowProblem,
    add_choice,
    indicator,
    question,
)

_TOML_TOP = {"code", "title", "purpose", "choices", "questions", "indicators"}
_TOML_QUESTION = {
    "name", "type", "label", "hint", "required", "choices", "constraint", "constraint_message", "relevant",
}


def _toml_text(table: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise RowProblem(key, "bad_value", str(value))
    if required and not value.strip():
        raise RowProblem(key, "missing_value")
    return value.strip()


def _toml_tables(data: Mapping[str, object], key: str) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RowProblem(key, "bad_value", str(entries))
    return entries


def _unknown_keys(table: Mapping[str, object], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise RowProblem(key, "unknown_key", key)


def _toml_choices(data: Mapping[str, object]) -> dict[str, tuple[Option, ...]]:
    lists = data.get("choices", {})
    if not isinstance(lists, dict):
        raise RowProblem("choices", "bad_value", str(lists))
    return {name: _toml_choice_list(name, entries) for name, entries in lists.items()}


def _toml_choice_list(name: str, entries: object) -> tuple[Option, ...]:
    if not isinstance(entries, list) or not entries:
        raise RowProblem(name, "no_choices", name)
    choices: list[Option] = []
    for entry in entries:
        if not (isinstance(entry, dict) and entry.keys() == {"value", "label"} and all(
            isinstance(text, str) and text.strip() for text in entry.values()
        )):
            raise RowProblem(name, "bad_choice", str(entry))
        add_choice(choices, name, entry["value"].strip(), entry["label"].strip())
    return tuple(choices)


def _toml_question(
    entry: Mapping[str, object], lists: Mapping[str, tuple[Option, ...]], earlier: Sequence[Question]
) -> Question:
    _unknown_keys(entry, _TOML_QUESTION)
    kind_text = _toml_text(entry, "type", required=True)
    if kind_text not in TOML_TYPES:
        raise RowProblem("type", "unsupported_type", kind_text)
    kind = QuestionType(kind_text)
    list_name = _toml_text(entry, "choices")
    if kind in (QuestionType.SELECT_ONE, QuestionType.SELECT_MULTIPLE) and not list_name:
        raise RowProblem("choices", "no_choices", "")
    if kind not in (QuestionType.SELECT_ONE, QuestionType.SELECT_MULTIPLE) and list_name:
        raise RowProblem("choices", "unexpected_choices", kind_text)
    if list_name and list_name not in lists:
        raise RowProblem("choices", "unknown_choices", list_name)
    required = entry.get("required", False)
    if not isinstance(required, bool):
        raise RowProblem("required", "bad_value", str(required))
    return question(
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
        if not CODE.fullmatch(code):
            raise RowProblem("code", "bad_code", code)
        title = _toml_text(data, "title", required=True)
        purpose = _toml_text(data, "purpose", required=True)
        question_entries = _toml_tables(data, "questions")
        indicator_entries = _toml_tables(data, "indicators")
        if not question_entries:
            raise RowProblem("questions", "no_questions")
    except RowProblem as problem:
        raise problem.at(filename) from problem
    try:
        lists = _toml_choices(data)
    except RowProblem as problem:
        raise problem.at(filename, table="choices") from problem
    questions: list[Question] = []
    for number, entry in enumerate(question_entries, start=1):
        try:
            questions.append(_toml_question(entry, lists, questions))
        except RowProblem as problem:
            raise problem.at(filename, table="questions", row=number) from problem
    indicators: list[Indicator] = []
    for number, entry in enumerate(indicator_entries, start=1):
        try:
            _unknown_keys(entry, {*INDICATOR_KEYS, *INDICATOR_OPTIONAL})
            indicators.append(indicator(entry, questions, [indicator.code for indicator in indicators]))
        except RowProblem as problem:
            raise problem.at(filename, table="indicators", row=number) from problem
    return Survey(code, title, purpose, tuple(questions), tuple(indicators), source=filename)


# ---- XLSForm ------------------------------------------------------------------------------------
