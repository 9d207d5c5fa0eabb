"""A household's answers as a tree (definition.py's docstring gives the format): reading and writing an
answer at (question, At), the instances of a repeat, and settling the whole set after each answer —
calculates recomputed in every instance, metadata filled, answers that a change made irrelevant dropped,
instances beyond a reduced repeat_count removed (as ODK does).

`At` holds, for each repeat a question is inside (outermost first), the 0-based index of its instance.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.surveys.definition import DONE_SUFFIX, Group, Item, Question, QuestionType, Repeat, Survey
from handlers.surveys.expr import Expr, ExprError, NodeSet, as_number, as_text, compile_expr
from handlers.surveys.secondary import Element

At = tuple[int, ...]
Answers = Mapping[str, object]
Box = dict[str, Any]  # one instance's answers (or the top level): the JSON the response stores
# a repeat_count of a million must not make a million instances; no household form needs more
MAX_INSTANCES = 200


class Missing(enum.Enum):
    """An answer never given (a skipped question is present with None)."""

    MISSING = enum.auto()


MISSING = Missing.MISSING


def computed(question: Question) -> bool:
    """Its value comes from its calculation, never from the resident (ODK's calculate and read-only)."""
    return question.kind is QuestionType.CALCULATE or (
        question.calculation is not None and question.kind is not QuestionType.NOTE
    )


# --- reading and writing --------------------------------------------------------------------------------


def box_at(answers: Answers, scope: tuple[str, ...], at: At) -> Answers | None:
    """The answers of the instance `at` of the repeats `scope` (the top level for no scope); None when
    that instance has no answers yet."""
    box: Answers = answers
    for repeat, index in zip(scope, at, strict=False):
        instances = box.get(repeat)
        if not isinstance(instances, list) or index >= len(instances):
            return None
        box = instances[index]
    return box


def value_at(answers: Answers, question: Question, at: At) -> object:
    box = box_at(answers, question.scope, at)
    return MISSING if box is None else box.get(question.name, MISSING)


def instances(answers: Answers, repeat: Repeat, at: At) -> list[Box]:
    """The instances of `repeat` inside the enclosing instances `at` (those with answers)."""
    box = box_at(answers, repeat.scope, at)
    found = box.get(repeat.name) if box is not None else None
    return found if isinstance(found, list) else []


def answered_in(survey: Survey, instance: Answers) -> bool:
    """Whether the resident gave any answer in this instance (its calculates do not count)."""
    for key, value in instance.items():
        question = survey.by_name.get(key)
        if question is not None and not computed(question):
            return True
        if key in survey.repeats and any(answered_in(survey, inner) for inner in _listed(value)):
            return True
    return False


def copied(value: Any) -> Any:
    """A copy of the JSON answers, so the response's stored dict is replaced, never changed in place."""
    if isinstance(value, dict):
        return {key: copied(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [copied(inner) for inner in value]
    return value


def ensure_box(answers: Box, scope: tuple[str, ...], at: At) -> Box:
    """The instance's dict, creating the instances up to it (the first answer of a member creates it)."""
    box = answers
    for repeat, index in zip(scope, at, strict=False):
        found = box.get(repeat)
        if not isinstance(found, list):
            found = box[repeat] = []
        while len(found) <= index:
            found.append({})
        box = found[index]
    return box


# --- expressions in an instance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolver:
    """${name} seen from the instance `at` of `scope`: the same instance for a question of the same
    repeats, the enclosing instance for an outer one, every instance's value (a NodeSet) for a repeat
    the current one is not inside."""

    survey: Survey
    answers: Answers
    scope: tuple[str, ...] = ()
    at: At = ()
    language: str = ""
    own: tuple[str, object] | None = None  # a constraint's question: the value being checked

    def ref(self, name: str) -> object:
        if self.own is not None and name == self.own[0]:
            return self.own[1]
        question = self.survey.by_name.get(name)
        if question is not None:
            return self._values(question.scope, name)
        repeat = self.survey.repeats.get(name)
        if repeat is not None:  # count(${members}): its instances
            return NodeSet(self._boxes((*repeat.scope, repeat.name)))
        return self.answers.get(name)

    def _values(self, scope: tuple[str, ...], name: str) -> object:
        shared = _shared(scope, self.scope, len(self.at))
        if shared == len(scope):
            box = box_at(self.answers, scope, self.at)
            return None if box is None else box.get(name)
        return NodeSet(box.get(name) for box in self._boxes(scope))

    def _boxes(self, scope: tuple[str, ...]) -> list[Answers]:
        """The instances of the innermost repeat of `scope` that lie inside the current slot's."""
        shared = _shared(scope, self.scope, len(self.at))
        start = box_at(self.answers, scope[:shared], self.at[:shared])
        boxes: list[Answers] = [] if start is None else [start]
        for repeat in scope[shared:]:
            boxes = [inner for box in boxes for inner in _listed(box.get(repeat))]
        return boxes

    def position(self) -> int | None:
        return self.at[-1] + 1 if self.at else None

    def indexed(self, name: str, path: tuple[tuple[str, int], ...]) -> object:
        question = self.survey.by_name.get(name)
        if question is None:
            return None
        chosen = dict(path)
        at: list[int] = []
        for depth, repeat in enumerate(question.scope):
            if repeat in chosen:
                at.append(chosen[repeat] - 1)
            elif depth < len(self.at) and depth < len(self.scope) and self.scope[depth] == repeat:
                at.append(self.at[depth])
            else:
                at.append(0)
        if any(index < 0 for index in at):
            return None
        value = value_at(self.answers, question, tuple(at))
        return None if value is MISSING else value

    def choice_name(self, name: str, value: object) -> str:
        question = self.survey.by_name.get(name)
        text = as_text(value)
        return question.choice_label(text, self.language) if question else text

    def instance(self, name: str) -> Element | None:
        return self.survey.instances.get(name)


def _shared(scope: tuple[str, ...], current: tuple[str, ...], depth: int) -> int:
    shared = 0
    for mine, theirs in zip(scope, current[:depth], strict=False):
        if mine != theirs:
            break
        shared += 1
    return shared


def _listed(value: object) -> list[Answers]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def truth(expr: Expr | None, resolver: Resolver, today: str, *, default: bool = True) -> bool:
    if expr is None:
        return default
    return bool(expr.evaluate(resolver.answers, today=today, resolver=resolver))


def count_of(survey: Survey, answers: Answers, repeat: Repeat, at: At, today: str) -> int | None:
    """How many instances a repeat_count asks for (None: an open repeat)."""
    if repeat.count is None:
        return None
    resolver = Resolver(survey, answers, repeat.scope, at)
    number = as_number(repeat.count.evaluate(answers, today=today, resolver=resolver))
    return 0 if number is None else max(0, min(MAX_INSTANCES, int(number)))


# --- defaults -------------------------------------------------------------------------------------------


_DYNAMIC = re.compile(r"\$\{|\(")


def default_of(survey: Survey, question: Question, at: At, answers: Answers, today: str, language: str = "") -> str:
    """The question's default as the resident could type it back ("" when none): the chat shows it as the
    current value. A default with ${…} or a function (pyxform's dynamic default) is evaluated here."""
    text = question.default.strip()
    if not text:
        return ""
    if _DYNAMIC.search(text):
        try:
            expr = compile_expr(text)
        except ExprError:
            return text
        value = expr.evaluate(answers, today=today, resolver=Resolver(survey, answers, question.scope, at, language))
        text = as_text(value)
    if question.kind is QuestionType.SELECT_ONE:
        return question.choice_label(text, language)
    if question.kind is QuestionType.SELECT_MULTIPLE:
        return ", ".join(question.choice_label(value, language) for value in text.split())
    return text


# --- settling after an answer ---------------------------------------------------------------------------


@dataclass
class _Settling:
    survey: Survey
    root: Box
    today: str
    now: str
    person: str
    device: str
    changed: bool = False
    with_computed: dict[str, bool] = field(default_factory=dict)

    def items(self, items: tuple[Item, ...], box: Box, scope: tuple[str, ...], at: At) -> None:
        resolver = Resolver(self.survey, self.root, scope, at)
        for item in items:
            if isinstance(item, Question):
                self.question(item, box, resolver)
            elif isinstance(item, Group):
                self.items(item.children, box, scope, at)
            else:
                self.repeat(item, box, resolver)

    def set(self, box: Box, name: str, value: object) -> None:
        if box.get(name, MISSING) != value:
            box[name] = value
            self.changed = True

    def drop(self, box: Box, name: str) -> None:
        if name in box:
            del box[name]
            self.changed = True

    def question(self, question: Question, box: Box, resolver: Resolver) -> None:
        if question.kind is QuestionType.METADATA:
            self.set(box, question.name, self.metadata(question, box.get(question.name)))
        elif computed(question):
            current, calculation, value = box.get(question.name), question.calculation, None
            if calculation is not None and truth(question.relevant, resolver, self.today):
                # one reading no answer (uuid(), today(), position(..)) is computed once, as ODK does on opening
                if not calculation.references and current not in (None, ""):
                    value = current
                else:
                    value = calculation.evaluate(self.root, current, today=self.today, now=self.now, resolver=resolver)
            self.set(box, question.name, _typed(question.kind, _stored(value)))
        elif question.name in box and not truth(question.relevant, resolver, self.today):
            self.drop(box, question.name)  # ODK clears what became irrelevant

    def metadata(self, question: Question, kept: object) -> object:
        match question.metadata:
            case "start":
                return kept or self.now or None
            case "end":
                return self.now or kept or None
            case "today":
                return self.today
            case "deviceid":
                return self.device or kept or None
            case "username":
                return self.person or kept or None
        return None  # phonenumber, simserial, audit…: nothing a chat can know

    def repeat(self, repeat: Repeat, box: Box, resolver: Resolver) -> None:
        if not truth(repeat.relevant, resolver, self.today):
            self.drop(box, repeat.name)
            self.drop(box, repeat.name + DONE_SUFFIX)
            return
        count = count_of(self.survey, self.root, repeat, resolver.at, self.today)
        found = box.get(repeat.name)
        listed: list[Box] = found if isinstance(found, list) else []
        if count is not None and len(listed) > count:
            del listed[count:]  # a smaller household: the members beyond it go, as in ODK
            self.changed = True
        wanted = len(listed)
        if self.has_computed(repeat):  # an instance's calculates exist before its first answer (ODK)
            wanted = count if count is not None else max(wanted, 1)
        if wanted > len(listed):
            listed.extend({} for _ in range(wanted - len(listed)))
            box[repeat.name] = listed
            self.changed = True
        for index, instance in enumerate(listed[:wanted]):
            self.items(repeat.children, instance, (*repeat.scope, repeat.name), (*resolver.at, index))

    def has_computed(self, repeat: Repeat) -> bool:
        if repeat.name not in self.with_computed:
            self.with_computed[repeat.name] = any(computed(q) for q in _questions(repeat.children))
        return self.with_computed[repeat.name]


def _questions(items: tuple[Item, ...]) -> Iterator[Question]:
    for item in items:
        if isinstance(item, Question):
            yield item
        else:
            yield from _questions(item.children)


def _typed(kind: QuestionType, value: object) -> object:
    """A read-only question's computed value in its own type, as ODK casts a calculation to its bind's
    type (a number read from a file's text is a number; a select_multiple's "a b" its list)."""
    if kind is QuestionType.INTEGER:
        number = as_number(value)
        return None if number is None else int(number)
    if kind is QuestionType.DECIMAL:
        return as_number(value)
    if kind is QuestionType.SELECT_MULTIPLE and isinstance(value, str) and value:
        return value.split()
    return value


def _stored(value: object) -> object:
    """A computed value as JSON keeps it: a node-set by its first value, NaN as nothing."""
    if isinstance(value, NodeSet):
        return value[0] if value else None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


_PASSES: dict[int, tuple[Survey, int]] = {}


def _passes(survey: Survey) -> int:
    """How many settling passes reach the fixed point: one when every expression only reads questions
    before it (the usual form), else one per computed question (each pass settles at least one more)."""
    cached = _PASSES.get(id(survey))
    if cached is not None and cached[0] is survey:
        return cached[1]
    order: dict[str, int] = {}
    forward = False
    for position, question in enumerate(_questions(survey.items)):
        order[question.name] = position
        for expr in (question.relevant, question.calculation):
            if expr is not None and any(order.get(name, position) >= position for name in expr.references):
                forward = True
    passes = 1 + sum(computed(q) for q in survey.questions) if forward else 1
    if len(_PASSES) > 64:  # forms are few; a reloaded one replaces its entry under a new id
        _PASSES.clear()
    _PASSES[id(survey)] = (survey, passes)
    return passes


def settle(
    survey: Survey,
    answers: Answers,
    today: str,
    *,
    now: str = "",
    person: str = "",
    device: str = "",
    in_place: bool = False,
) -> Box:
    """The answers with every calculate recomputed, metadata filled, irrelevant answers and instances
    beyond a repeat_count dropped — repeated until nothing changes (bounded by the form). A copy, unless
    `in_place` (the caller's own fresh copy)."""
    root = answers if in_place and isinstance(answers, dict) else copied(dict(answers))
    settling = _Settling(survey, root, today, now, person, device)
    for _ in range(_passes(survey)):
        settling.changed = False
        settling.items(survey.items, settling.root, (), ())
        if not settling.changed:
            break
    return settling.root
