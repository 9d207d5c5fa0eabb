"""The survey engine, without a chat: which question comes next (a Slot: a question in one repeat
instance, or a repeat's "another one?"), what an answer typed in a chat means, and what the answers look
like read back. Answers are nested as definition.py's docstring says; answers.py reads and writes them.
A question skipped with "bỏ qua" is present with None."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date

from handlers.handbook.normalize import plain
from handlers.surveys import answers as tree
from handlers.surveys import choosing, typed
from handlers.surveys.answers import MISSING, At, Resolver, computed, truth, value_at
from handlers.surveys.definition import (
    ASKED,
    DONE_SUFFIX,
    Group,
    Item,
    Option,
    Question,
    QuestionType,
    Repeat,
    Survey,
    translated,
)
from handlers.surveys.expr import Expr, NodeSet, column_equalities, equality_key

Answers = Mapping[str, object]
__all__ = ["MISSING", "At", "value_at"]  # the chat reads answers through the engine only

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
_PHONE = re.compile(r"0(?:[35789][0-9]{8}|2[0-9]{9})")
MAX_TEXT = 500


@dataclass(frozen=True)
class Invalid:
    """Why a typed answer was not taken; `reason` picks the explanation in survey_invalid.j2."""

    # a QuestionType's value where its parsing failed (integer, date, geopoint, image…), or choice | choices |
    # ambiguous | required | constraint | text
    reason: str
    message: str = ""  # the form's own constraint or required message; for "ambiguous", the words typed
    among: tuple[int, ...] = ()  # "ambiguous": the numbers of the choices those words fit


def is_skip(text: str) -> bool:
    return plain(text) in (SKIP, "bo", "skip")


def is_back(text: str) -> bool:
    return plain(text) == BACK


# --- slots: where the resident is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A question in one instance of its repeats, or (question None) the "another one?" of an open
    `repeat`, whose `at` is then the enclosing instances' indices."""

    question: Question | None
    at: At = ()
    repeat: Repeat | None = None

    def same(self, other: Slot) -> bool:
        """The same place in the form (questions compared by name: the chat rebuilds slots from names)."""
        mine = self.question.name if self.question else self.repeat.name if self.repeat else ""
        theirs = other.question.name if other.question else other.repeat.name if other.repeat else ""
        return (mine, self.at, self.question is None) == (theirs, other.at, other.question is None)


def asked(question: Question) -> bool:
    """A question the resident answers (notes, calculates, metadata and read-only values are not)."""
    return question.kind in ASKED and not question.read_only and not computed(question)


@dataclass(frozen=True)
class _Step:
    slot: Slot
    answered: bool
    note: bool  # a note: shown with the question after it, never answered


def _walk(survey: Survey, answers: Answers, today: str) -> Iterator[_Step]:
    """Every slot of the form in the order it is asked, relevance checked in each instance."""
    return _items(survey, answers, today, survey.items, (), ())


def _items(
    survey: Survey, answers: Answers, today: str, items: tuple[Item, ...], scope: tuple[str, ...], at: At
) -> Iterator[_Step]:
    resolver = Resolver(survey, answers, scope, at)
    box = tree.box_at(answers, scope, at) or {}
    for item in items:
        if isinstance(item, Question):
            note = item.kind is QuestionType.NOTE
            # an answer kept is relevant: record() drops those a change made irrelevant
            answered = not note and item.name in box
            if (note or asked(item)) and (answered or truth(item.relevant, resolver, today)):
                yield _Step(Slot(item, at), answered, note)
        elif isinstance(item, Group):
            yield from _items(survey, answers, today, item.children, scope, at)
        elif truth(item.relevant, resolver, today):
            yield from _repeat(survey, answers, today, item, at)


def _repeat(survey: Survey, answers: Answers, today: str, repeat: Repeat, at: At) -> Iterator[_Step]:
    count = tree.count_of(survey, answers, repeat, at, today)
    existing = len(tree.instances(answers, repeat, at))
    # an open repeat starts with its first instance, as in ODK Collect; "another one?" follows the last
    for index in range(count if count is not None else max(existing, 1)):
        yield from _items(survey, answers, today, repeat.children, (*repeat.scope, repeat.name), (*at, index))
    if count is None:
        box = tree.box_at(answers, repeat.scope, at) or {}
        yield _Step(Slot(None, at, repeat), bool(box.get(repeat.name + DONE_SUFFIX)), note=False)


def next_slot(survey: Survey, answers: Answers, today: str) -> Slot | None:
    """The first relevant slot not answered yet; None when everything relevant is answered."""
    return next((step.slot for step in _walk(survey, answers, today) if not step.note and not step.answered), None)


def previous_slot(survey: Survey, answers: Answers, slot: Slot, today: str) -> Slot | None:
    """"quay lại": the answered slot just before `slot` (across instances and "another one?"); the last
    answered one when `slot` is no longer asked; None at the first."""
    before: Slot | None = None
    for step in _walk(survey, answers, today):
        if step.slot.same(slot):
            return _reopened(survey, answers, slot, before) or before
        if step.answered and not step.note:
            before = step.slot
    return before


def _reopened(survey: Survey, answers: Answers, slot: Slot, before: Slot | None) -> Slot | None:
    """The "another one?" that opened the slot's instance, when the slot is the first question of an open
    repeat's last instance and nothing is answered in it yet: "có" by mistake is undone by going back."""
    question = slot.question
    if question is None or not question.scope:
        return None
    repeat, depth = survey.repeats[question.scope[-1]], len(question.scope) - 1
    if repeat.count is not None or len(slot.at) <= depth or slot.at[depth] == 0:
        return None
    listed = tree.instances(answers, repeat, slot.at[:depth])
    if slot.at[depth] != len(listed) - 1 or tree.answered_in(survey, listed[-1]):
        return None
    inside = before is not None and before.at[: depth + 1] == slot.at[: depth + 1] and before.question is not None
    return None if inside else Slot(None, slot.at[:depth], repeat)


Numbered = list[tuple[int, Slot, bool]]


# One numbering for the prompt ("Câu 5/12"), the summary and "sửa câu 5": the questions this household is
# asked, in the order it is asked them, so a resident reads the numbers as they went; a question inside a
# repeat has one number per member (so a number names one answer); notes, calculations and questions the
# form's logic skips have none; groups change nothing. The M of "Câu N/M" counts those asked now: it grows
# when an answer (a household's size) adds questions.
def numbered_slots(survey: Survey, answers: Answers, today: str) -> Numbered:
    """(number, slot, answered or skipped) for each question the household is asked."""
    questions = (step for step in _walk(survey, answers, today) if not step.note and step.slot.question)
    return [(number, step.slot, step.answered) for number, step in enumerate(questions, 1)]


def number_of(numbered: Numbered, slot: Slot) -> int | None:
    """The slot's number in `numbered_slots`; None when it is not asked (any more)."""
    return next((number for number, other, _ in numbered if other.same(slot)), None)


def answered_slots(survey: Survey, answers: Answers, today: str) -> list[tuple[int, Slot]]:
    """The answered (or skipped) questions with their numbers."""
    return [(number, slot) for number, slot, answered in numbered_slots(survey, answers, today) if answered]


def notes_before(survey: Survey, slot: Slot | None, answers: Answers, today: str, language: str = "") -> list[str]:
    """The relevant notes right before a slot, labels filled in: they are shown with it. For `slot` None,
    the notes after the last question (shown with the summary)."""
    return [label_of(survey, note, answers, today, language) for note in _notes(survey, slot, answers, today)]


def _notes(survey: Survey, slot: Slot | None, answers: Answers, today: str) -> list[Slot]:
    notes: list[Slot] = []
    for step in _walk(survey, answers, today):
        if step.note:
            notes.append(step.slot)
        elif slot is not None and step.slot.same(slot):
            break
        else:
            notes = []
    return notes


def instance_count(answers: Answers, repeat: Repeat, at: At) -> int:
    """How many instances of `repeat` inside the enclosing instances `at` have begun (at least the first,
    which an open repeat starts with)."""
    return max(len(tree.instances(answers, repeat, at)), 1)


def instance_of(survey: Survey, slot: Slot, answers: Answers, today: str = "") -> list[tuple[Repeat, int, int | None]]:
    """For each repeat the slot is in: (repeat, 1-based instance number, its count or None for an open one).
    A "another one?" slot ends with its repeat and the number of instances so far."""
    scope = slot.question.scope if slot.question else slot.repeat.scope if slot.repeat else ()
    found: list[tuple[Repeat, int, int | None]] = []
    for depth, (name, index) in enumerate(zip(scope, slot.at, strict=False)):
        repeat = survey.repeats[name]
        found.append((repeat, index + 1, tree.count_of(survey, answers, repeat, slot.at[:depth], today)))
    if slot.question is None and slot.repeat is not None:
        found.append((slot.repeat, instance_count(answers, slot.repeat, slot.at), None))
    return found


def instance_labels(
    survey: Survey, slot: Slot, answers: Answers, today: str, language: str = ""
) -> list[tuple[str, int, int | None]]:
    """instance_of as the resident reads it: ("Thành viên", 2, 3), the repeat's label in `language`."""
    return [(repeat.label_in(language) or repeat.name, number, count)
            for repeat, number, count in instance_of(survey, slot, answers, today)]


# --- what the resident reads ----------------------------------------------------------------------------

_FIELD = re.compile(r"\$\{([^}]*)\}")


def _resolver(survey: Survey, slot: Slot, answers: Answers, language: str = "") -> Resolver:
    if slot.question is not None:
        return Resolver(survey, answers, slot.question.scope, slot.at, language)
    scope = slot.repeat.scope if slot.repeat else ()
    return Resolver(survey, answers, scope, slot.at, language)


def fill(survey: Survey, text: str, resolver: Resolver) -> str:
    """${name} in a label replaced by that answer as the resident reads it, in the slot's instance."""
    if "${" not in text:
        return text

    def shown(match: re.Match[str]) -> str:
        name = match.group(1)
        value = resolver.ref(name)
        question = survey.by_name.get(name)
        values = list(value) if isinstance(value, NodeSet) else [value]
        texts = [display(question, v, resolver.language) if question else _plain(v) for v in values]
        return ", ".join(t for t in texts if t)

    return _FIELD.sub(shown, text)


def _plain(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return number_text(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def label_of(survey: Survey, slot: Slot, answers: Answers, today: str, language: str = "") -> str:  # noqa: ARG001 - the contract's signature
    """The question's label (or, for "another one?", the repeat's) with ${field} filled in the instance."""
    item = slot.question or slot.repeat
    text = item.label_in(language) if item else ""
    return fill(survey, text, _resolver(survey, slot, answers, language))


def hint_of(survey: Survey, slot: Slot, answers: Answers, today: str, language: str = "") -> str:  # noqa: ARG001 - the contract's signature
    text = slot.question.hint_in(language) if slot.question else ""
    return fill(survey, text, _resolver(survey, slot, answers, language))


def choices_of(survey: Survey, slot: Slot, answers: Answers, today: str, language: str = "") -> tuple[Option, ...]:
    """The choices offered here: those the choice_filter lets through, in the form's order (the chat
    numbers them afresh)."""
    question = slot.question
    if question is None:
        return ()
    choice_filter = question.choice_filter
    if choice_filter is None:
        return question.choices
    resolver = _resolver(survey, slot, answers, language)
    index = _choice_index(survey, question)
    if index is not None:
        key = tuple(equality_key(expr.evaluate(answers, today=today, resolver=resolver)) for _, expr in index.pairs)
        if None not in key:
            return index.by_key.get(key, ())
    return tuple(
        option
        for option in question.choices
        if choice_filter.evaluate(answers, today=today, resolver=resolver, row=_row(survey, option, language))
    )


def _row(survey: Survey, option: Option, language: str) -> dict[str, str]:
    """The columns a choice_filter reads: the choice's own, `name`, `label` in the language shown, and
    `label::<language>` in each of the form's languages."""
    labels = {f"label::{named}": text for named, text in option.labels}
    if survey.languages:
        labels[f"label::{survey.languages[0]}"] = option.label
    label = translated(option.label, option.labels, language)
    return {**dict(option.columns), **labels, "name": option.value, "label": label}


@dataclass(frozen=True)
class _ChoiceIndex:
    """A long list filtered by `column = ${answer} and …` (provinces → districts → communes): its choices
    by their columns' values, so filtering 5,000 communes is one lookup, not 5,000 evaluations."""

    pairs: list[tuple[str, Expr]]
    by_key: dict[tuple[object, ...], tuple[Option, ...]]


_INDEXED_FROM = 50  # choices: a shorter list is filtered as fast one by one
_INDEXES: dict[int, tuple[Question, _ChoiceIndex | None]] = {}


def _choice_index(survey: Survey, question: Question) -> _ChoiceIndex | None:
    cached = _INDEXES.get(id(question))
    if cached is not None and cached[0] is question:
        return cached[1]
    pairs = column_equalities(question.choice_filter.tree) if question.choice_filter else None
    index = None
    # a label depends on the language: such a filter is evaluated choice by choice
    if pairs and len(question.choices) >= _INDEXED_FROM and all(column != "label" for column, _ in pairs):
        grouped: dict[tuple[object, ...], list[Option]] = {}
        for option in question.choices:
            row = _row(survey, option, "")
            grouped.setdefault(tuple(equality_key(row.get(column, "")) for column, _ in pairs), []).append(option)
        index = _ChoiceIndex(pairs, {key: tuple(options) for key, options in grouped.items()})
    if len(_INDEXES) > 256:  # forms are few; one reloaded is indexed again under its new questions
        _INDEXES.clear()
    _INDEXES[id(question)] = (question, index)
    return index


def default_of(survey: Survey, slot: Slot, answers: Answers, today: str, language: str = "") -> str:
    """The question's default as text the resident could send back; "" when it has none."""
    if slot.question is None:
        return ""
    return tree.default_of(survey, slot.question, slot.at, answers, today, language)


# --- taking an answer -----------------------------------------------------------------------------------


def parse_answer(survey: Survey, slot: Slot, text: str, answers: Answers, today: str) -> object | Invalid:
    """The value a typed answer stands for: its type, then the constraint, in the slot's instance (the
    choices numbered as choices_of gives them). A skip returns None (only where the question is optional)."""
    question = slot.question
    if question is None:
        return Invalid("choice")
    resolver = _resolver(survey, slot, answers)
    return _checked(question, text, answers, today, resolver, choices_of(survey, slot, answers, today))


def _checked(
    question: Question, text: str, answers: Answers, today: str, resolver: Resolver, choices: tuple[Option, ...]
) -> object | Invalid:
    text = text.strip()
    if is_skip(text) or not text:
        required = question.required or truth(question.required_if, resolver, today, default=False)
        # a choice_filter that leaves nothing to pick cannot hold the resident there for ever
        nothing_to_pick = question.choice_filter is not None and not choices
        return Invalid("required", question.required_message) if required and not nothing_to_pick else None
    value = _parse(question, text, choices, today)
    if isinstance(value, Invalid):
        return value
    if question.constraint is not None:
        checking = replace(resolver, own=(question.name, value))
        if not question.constraint.evaluate(answers, current=value, today=today, resolver=checking):
            return Invalid("constraint", question.constraint_message)
    return value


def record(
    survey: Survey,
    answers: Answers,
    slot: Slot,
    value: object,
    today: str,
    *,
    now: str = "",
    person: str = "",
    device: str = "",
) -> dict[str, object]:
    """The answers with `value` at the slot, then settled (calculates, metadata, irrelevant ones dropped).
    `now`: the village's local ISO date-time; `person`: the username; `device`: "langso:<platform>"."""
    if slot.question is None:
        raise ValueError("another-one slots take more()")
    changed = tree.copied(dict(answers))
    tree.ensure_box(changed, slot.question.scope, slot.at)[slot.question.name] = value
    return tree.settle(survey, changed, today, now=now, person=person, device=device, in_place=True)


def more(
    survey: Survey,
    answers: Answers,
    slot: Slot,
    yes: bool,
    today: str,
    *,
    now: str = "",
    person: str = "",
    device: str = "",
) -> dict[str, object]:
    """The answer to "another one?": yes opens the next instance, no ends the repeat."""
    repeat = slot.repeat
    if repeat is None:
        raise ValueError("only another-one slots take more()")
    changed = tree.copied(dict(answers))
    box = tree.ensure_box(changed, repeat.scope, slot.at)
    listed = box.get(repeat.name)
    if not isinstance(listed, list):
        listed = box[repeat.name] = []
    # an instance opened by "có" and left empty: "không" takes it back, "có" again does not add a second
    opened_empty = len(listed) >= 2 and not tree.answered_in(survey, listed[-1])
    if yes:
        wanted = max(len(listed), 1) + (0 if opened_empty else 1)  # the first instance is there from the start
        listed.extend({} for _ in range(wanted - len(listed)))
        box.pop(repeat.name + DONE_SUFFIX, None)
    else:
        if opened_empty:
            listed.pop()
        box[repeat.name + DONE_SUFFIX] = True
    return tree.settle(survey, changed, today, now=now, person=person, device=device, in_place=True)


def _parse(question: Question, text: str, choices: tuple[Option, ...], today: str) -> object | Invalid:
    kind = question.kind
    value: object
    match kind:
        case QuestionType.INTEGER:
            return _integer(text)
        case QuestionType.DECIMAL:
            found = _DECIMAL.fullmatch(text)
            return float(found.group(1).replace(",", ".")) if found else _integer(text, "decimal")
        case QuestionType.PHONE:
            return _phone(text)
        case QuestionType.SELECT_ONE | QuestionType.SELECT_MULTIPLE:
            return _chosen(question, text, choices)
        case QuestionType.DATE:
            value = typed.parse_date(text, _day(today))
        case QuestionType.DATETIME:
            value = typed.parse_datetime(text, _day(today))
        case QuestionType.TIME:
            value = typed.parse_time(text)
        case QuestionType.GEOPOINT:
            value = typed.parse_geopoint(text)
        case QuestionType.GEOTRACE | QuestionType.GEOSHAPE:  # all the points in one message; the chat also gathers them
            value = typed.shape_of(typed.parse_points(text), kind is QuestionType.GEOSHAPE)
        case QuestionType.RANGE:
            value = typed.parse_range(text, *(_parameter(question, key, fallback) for key, fallback in _RANGE))
        case QuestionType.RANK:
            value = typed.parse_rank(text, choices)
        case QuestionType.ACKNOWLEDGE:
            value = typed.parse_acknowledge(text)
        case QuestionType.BARCODE:
            value = typed.parse_barcode(text)
        case QuestionType.IMAGE | QuestionType.AUDIO | QuestionType.VIDEO | QuestionType.FILE:
            value = None  # a file is sent, not typed: the chat takes attachments
        case _:
            return text if len(text) <= MAX_TEXT else Invalid("text")
    return Invalid(kind.value) if value is None else value


_RANGE = (("start", 1.0), ("end", 10.0), ("step", 1.0))  # pyxform's defaults


def _parameter(question: Question, key: str, fallback: float) -> float:
    text = dict(question.parameters).get(key, "")
    try:
        return float(text)
    except ValueError:
        return fallback


def _day(today: str) -> date:
    return date.fromisoformat(today) if today else date.today()  # noqa: DTZ011 - only when no village date was given


def _chosen(question: Question, text: str, choices: tuple[Option, ...]) -> str | list[str] | Invalid:
    several = question.kind is QuestionType.SELECT_MULTIPLE
    picked = choosing.pick(choices, text, several=several)
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


def _phone(text: str) -> str | Invalid:
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    return digits if _PHONE.fullmatch(digits) else Invalid("phone")


# --- reading answers back -------------------------------------------------------------------------------


def display(question: Question, value: object, language: str = "") -> str | None:
    """An answer as a person reads it back; None for a skipped question."""
    if value is None or value is MISSING:
        return None
    if question.kind is QuestionType.SELECT_ONE:
        return question.choice_label(str(value), language)
    if question.kind in (QuestionType.SELECT_MULTIPLE, QuestionType.RANK) and isinstance(value, list):
        return ", ".join(question.choice_label(v, language) for v in value)
    if isinstance(value, str) and question.kind in _SHOWN:
        return _SHOWN[question.kind](value)
    if isinstance(value, dict):  # a file: its name
        return str(value.get("filename") or value.get("kind") or "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
    return str(value)


def _day_month_year(value: str) -> str:
    try:
        return f"{date.fromisoformat(value[:10]):%d/%m/%Y}"
    except ValueError:
        return value


# stored as ODK stores them, read back as Vietnamese write them
_SHOWN: dict[QuestionType, Callable[[str], str]] = {
    QuestionType.DATE: _day_month_year,
    QuestionType.DATETIME: lambda value: f"{_day_month_year(value)} {value[11:16]}".strip(),
    QuestionType.TIME: lambda value: value[:5],
    QuestionType.GEOPOINT: lambda value: ", ".join(value.split()[:2]),
}


def number_text(value: float) -> str:
    """3, 2,5 — a number as Vietnamese write it (decimal comma), whole numbers without ",0"."""
    return f"{value:g}".replace(".", ",")
