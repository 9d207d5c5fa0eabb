"""The survey engine, without a chat: which question comes next, what an answer typed in a chat means,
and what the answers look like read back. Answers are a dict of question name -> value (int, float,
str, ISO date str, list of choice values); a question skipped with "bỏ qua" is present with None."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from handlers.handbook.normalize import plain
from handlers.surveys import choosing
from handlers.surveys.definition import Question, QuestionType, Survey

Answers = Mapping[str, object]

SKIP = "bo qua"
BACK = "quay lai"
_NUMBER_WORDS = {
    "khong": 0, "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5,
    "sau": 6, "bay": 7, "tam": 8, "chin": 9, "muoi": 10,
}  # fmt: skip
# ASCII digits only, and few of them: "５", "٣" or 5,000 digits are no answer (int() of them fails or
# makes a number no form means); "5 người" is 5
_INTEGER = re.compile(r"[^\d-]*(-?[0-9]{1,9})\s*[^\d.,/]*")
_DECIMAL = re.compile(r"[^\d-]*(-?[0-9]{1,9}(?:[.,][0-9]{1,6})?)\s*[^\d.,/]*")
_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d")
_PHONE = re.compile(r"0(?:[35789][0-9]{8}|2[0-9]{9})")
MAX_TEXT = 500


@dataclass(frozen=True)
class Invalid:
    """Why a typed answer was not taken; `reason` picks the explanation in survey_invalid.j2."""

    reason: str  # integer | decimal | date | phone | choice | choices | ambiguous | required | constraint | text
    message: str = ""  # the form's own constraint message; for "ambiguous", the words typed
    among: tuple[int, ...] = ()  # "ambiguous": the numbers of the choices those words fit


def is_relevant(question: Question, answers: Answers, today: str) -> bool:
    return question.relevant is None or bool(question.relevant.evaluate(answers, today=today))


def next_question(survey: Survey, answers: Answers, today: str) -> Question | None:
    """The first relevant question nobody in the household has answered or skipped yet."""
    for question in survey.questions:
        if question.kind is not QuestionType.NOTE and question.name not in answers and is_relevant(question, answers, today):
            return question
    return None


def notes_before(survey: Survey, question: Question, answers: Answers, today: str) -> list[Question]:
    """The relevant notes right before a question: they are shown with it."""
    notes: list[Question] = []
    for candidate in survey.questions:
        if candidate is question:
            return notes
        if candidate.kind is QuestionType.NOTE:
            notes.append(candidate)
        else:
            notes = []
    return [n for n in notes if is_relevant(n, answers, today)]


def prune(survey: Survey, answers: Answers, today: str) -> dict[str, object]:
    """Answers to questions that a changed earlier answer made irrelevant are dropped, as ODK does."""
    kept: dict[str, object] = {}
    for question in survey.questions:
        if question.name in answers and is_relevant(question, kept, today):
            kept[question.name] = answers[question.name]
    return kept


def answered(survey: Survey, answers: Answers, today: str) -> list[tuple[int, Question]]:
    """The relevant questions with an answer (or a skip), numbered as they are asked."""
    return [
        (number, q)
        for number, q in enumerate(askable(survey), 1)
        if q.name in answers and is_relevant(q, answers, today)
    ]


def askable(survey: Survey) -> list[Question]:
    return [q for q in survey.questions if q.kind is not QuestionType.NOTE]


def number_of(survey: Survey, question: Question) -> tuple[int, int]:
    """("Câu 3/12"): position among the questions that are asked, and their count."""
    questions = askable(survey)
    return questions.index(question) + 1, len(questions)


def is_skip(text: str) -> bool:
    return plain(text) in (SKIP, "bo", "skip")


def is_back(text: str) -> bool:
    return plain(text) == BACK


def parse_answer(question: Question, text: str, answers: Answers, today: str) -> object | Invalid:
    """The value a typed answer stands for, checked against the question's type and constraint.
    A skip returns None (only where the question is optional)."""
    text = text.strip()
    if is_skip(text) or not text:
        return Invalid("required") if question.required else None
    value = _parse(question, text)
    if isinstance(value, Invalid):
        return value
    if question.constraint is not None and not question.constraint.evaluate(answers, current=value, today=today):
        return Invalid("constraint", question.constraint_message)
    return value


def _parse(question: Question, text: str) -> object | Invalid:
    match question.kind:
        case QuestionType.INTEGER:
            return _integer(text)
        case QuestionType.DECIMAL:
            found = _DECIMAL.fullmatch(text)
            return float(found.group(1).replace(",", ".")) if found else _integer(text, "decimal")
        case QuestionType.DATE:
            return _date(text)
        case QuestionType.PHONE:
            return _phone(text)
        case QuestionType.SELECT_ONE | QuestionType.SELECT_MULTIPLE:
            return _chosen(question, text)
        case _:
            return text if len(text) <= MAX_TEXT else Invalid("text")


def _chosen(question: Question, text: str) -> str | list[str] | Invalid:
    several = question.kind is QuestionType.SELECT_MULTIPLE
    picked = choosing.pick(question.choices, text, several=several)
    if isinstance(picked, choosing.Ambiguous):
        return Invalid("ambiguous", picked.typed, picked.numbers)
    if several:
        return picked or Invalid("choices")
    return picked[0] if picked is not None and len(picked) == 1 else Invalid("choice")


def _integer(text: str, reason: str = "integer") -> int | Invalid:
    found = _INTEGER.fullmatch(text)
    if found:
        return int(found.group(1))
    word = plain(text).removesuffix(" nguoi").removesuffix(" cai").strip()
    return _NUMBER_WORDS[word] if word in _NUMBER_WORDS else Invalid(reason)


def _date(text: str) -> str | Invalid:
    cleaned = re.sub(r"\s+", "", text)
    if not cleaned.isascii():  # strptime would read other scripts' digits too
        return Invalid("date")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    return Invalid("date")


def _phone(text: str) -> str | Invalid:
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    return digits if _PHONE.fullmatch(digits) else Invalid("phone")


def display(question: Question, value: object) -> str | None:
    """An answer as a person reads it back; None for a skipped question."""
    if value is None:
        return None
    if question.kind is QuestionType.SELECT_ONE:
        return question.choice_label(str(value))
    if question.kind is QuestionType.SELECT_MULTIPLE and isinstance(value, list):
        return ", ".join(question.choice_label(v) for v in value)
    if question.kind is QuestionType.DATE:
        return f"{date.fromisoformat(str(value)):%d/%m/%Y}"
    if isinstance(value, int | float):
        return number_text(value)
    return str(value)


def number_text(value: float) -> str:
    """3, 2,5 — a number as Vietnamese write it (decimal comma), whole numbers without ",0"."""
    return f"{value:g}".replace(".", ",")
