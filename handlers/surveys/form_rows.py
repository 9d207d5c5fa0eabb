"""What both survey file formats share: the error that names where a form is wrong, and the checks of
one question or indicator, whichever sheet or table it came from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from handlers.surveys.definition import Indicator, Option, Question, QuestionType
from handlers.surveys.expr import NAME, Expr, ExprError, compile_expr
from messages import render

TOML_TYPES = tuple(kind.value for kind in QuestionType)
XLSFORM_TYPES = tuple(kind.value for kind in QuestionType if kind is not QuestionType.PHONE)  # ODK has no phone type
CODE = re.compile(r"[a-z0-9-]+")


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
        return self.text()

    def text(self, *, web: bool = False) -> str:
        """`web`: for the console's upload, whose advice differs from the command line's (a missing file)."""
        return render(
            "survey_form_error",
            web=web,
            source=self.source,
            sheet=self.sheet,
            table=self.table,
            row=self.row,
            column=self.column,
            reason=self.reason,
            value=self.value,
            supported=", ".join(XLSFORM_TYPES if self.sheet else TOML_TYPES),  # only XLSForms have sheets
        )


class RowProblem(Exception):
    """A problem in one row; the loader that knows the row turns it into a FormError."""

    def __init__(self, column: str, reason: str, value: str = "") -> None:
        super().__init__(column, reason, value)
        self.column, self.reason, self.value = column, reason, value

    def at(self, source: str, *, sheet: str = "", table: str = "", row: int | None = None) -> FormError:
        return FormError(
            source=source, sheet=sheet, table=table, row=row, column=self.column, reason=self.reason, value=self.value
        )




def expression(
    column: str, text: str, known: Iterable[str], reason: str, *, choice_filter: bool = False, lookups: bool = False
) -> Expr:
    """`known`: the questions it may refer to; any other ${name} is reported with `reason`.
    `choice_filter`: bare names are the columns of the choice being filtered. `lookups`: instance() and
    pulldata() may read the form's lists and files (only an XLSForm's questions have them)."""
    try:
        expr = compile_expr(text, choice_filter=choice_filter)
    except ExprError as error:
        raise RowProblem(column, error.reason, error.detail) from error
    if expr.instances and not lookups:
        raise RowProblem(column, "unknown_function", "instance" if "instance(" in text else "pulldata")
    allowed = set(known)
    for name in sorted(expr.references):
        if name not in allowed:
            raise RowProblem(column, reason, name)
    return expr


def question(
    earlier: Sequence[Question],
    *,
    name: str,
    kind: QuestionType,
    label: str,
    hint: str,
    required: bool,
    choices: tuple[Option, ...],
    constraint: str,
    constraint_message: str,
    relevant: str,
) -> Question:
    """Checks common to both formats. A relevant or constraint may only look back: the chat asks in
    order, so a later answer does not exist yet when the question is reached."""
    if not NAME.fullmatch(name):
        raise RowProblem("name", "bad_name", name)
    before = [question.name for question in earlier]
    if name in before:
        raise RowProblem("name", "duplicate_name", name)
    if not label:
        raise RowProblem("label", "missing_value")
    return Question(
        name=name,
        kind=kind,
        label=label,
        hint=hint,
        required=required,
        choices=choices,
        # a constraint may name its own question, as ODK allows: ${members} means the same as .
        constraint=expression("constraint", constraint, [*before, name], "not_earlier") if constraint else None,
        constraint_message=constraint_message,
        relevant=expression("relevant", relevant, before, "not_earlier") if relevant else None,
    )


INDICATOR_KEYS = ("code", "title", "numerator", "denominator", "numerator_text", "denominator_text", "target")
INDICATOR_OPTIONAL = ("sentence",)
SENTENCE_SLOTS = ("{numerator}", "{denominator}")


def indicator(fields: Mapping[str, object], questions: Sequence[Question], codes: Iterable[str]) -> Indicator:
    text = {key: str(fields.get(key, "")).strip() for key in INDICATOR_KEYS}
    for key in INDICATOR_KEYS:
        if not text[key]:
            raise RowProblem(key, "missing_value")
    if text["code"] in codes:
        raise RowProblem("code", "duplicate_code", text["code"])
    names = [question.name for question in questions]
    return Indicator(
        code=text["code"],
        title=text["title"],
        numerator=expression("numerator", text["numerator"], names, "unknown_question"),
        denominator=expression("denominator", text["denominator"], names, "unknown_question"),
        numerator_text=text["numerator_text"],
        denominator_text=text["denominator_text"],
        target=percent(fields["target"]),
        sentence=sentence(str(fields.get("sentence", "")).strip()),
    )


def sentence(text: str) -> str:
    """An indicator's sentence must show both numbers, and nothing else in braces."""
    if text and (any(slot not in text for slot in SENTENCE_SLOTS) or _without_slots(text).count("{")):
        raise RowProblem("sentence", "bad_sentence", text)
    return text


def _without_slots(text: str) -> str:
    for slot in SENTENCE_SLOTS:
        text = text.replace(slot, "")
    return text


def percent(value: object) -> float:
    try:
        percent = float(str(value))
    except ValueError:
        percent = -1.0
    if isinstance(value, bool) or not 0 < percent <= 100:
        raise RowProblem("target", "bad_target", str(value))
    return percent


def add_choice(choices: list[Option], column: str, value: str, label: str) -> None:
    if any(choice.value == value for choice in choices):
        raise RowProblem(column, "duplicate_choice", value)  # selected() could not tell the two apart
    choices.append(Option(value, label))
