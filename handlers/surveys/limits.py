"""The range a number question's constraint allows, read off the constraint itself, so that what the bot
says before the answer ("từ 0 đến 3") is what it checks after. Only bounds every answer must meet are
read: `. >= 1 and . <= ${members}` gives both; a bound inside `or` or `not` gives none."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from handlers.surveys.definition import Question, QuestionType
from handlers.surveys.expr import Binary, Current, Literal, Node, Ref

_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Bound:
    value: int | float
    source: str | None  # the earlier question it is the answer to, if it is one


@dataclass(frozen=True)
class Limits:
    low: Bound | None
    high: Bound | None


def _is_current(node: Node, own: str) -> bool:
    """`.`, or the question's own name, which a constraint may use for it as ODK allows."""
    return isinstance(node, Current) or node == Ref(own)


def _comparisons(node: Node, own: str) -> Iterator[tuple[str, Node]]:
    """(op, other side) for each `. op other` that the whole constraint requires, `.` put on the left."""
    match node:
        case Binary("and", left, right):
            yield from _comparisons(left, own)
            yield from _comparisons(right, own)
        case Binary(op, left, right) if op in _FLIPPED and _is_current(left, own):
            yield op, right
        case Binary(op, left, right) if op in _FLIPPED and _is_current(right, own):
            yield _FLIPPED[op], left


def _bound(node: Node, answers: Mapping[str, object]) -> Bound | None:
    match node:
        case Literal(value) if isinstance(value, int | float):
            return Bound(value, None)
        case Ref(name):
            answer = answers.get(name)
            if isinstance(answer, int | float) and not isinstance(answer, bool):
                return Bound(answer, name)
    return None


def _whole(op: str, value: float) -> int:
    """The first or last whole number a comparison lets through: `. > 2.5` starts at 3."""
    match op:
        case ">=":
            return math.ceil(value)
        case ">":
            return math.floor(value) + 1
        case "<=":
            return math.floor(value)
    return math.ceil(value) - 1


def limits(question: Question, answers: Mapping[str, object]) -> Limits:
    """The tightest bounds for an integer or decimal question given the answers so far."""
    low: Bound | None = None
    high: Bound | None = None
    if question.constraint is None or question.kind not in (QuestionType.INTEGER, QuestionType.DECIMAL):
        return Limits(None, None)
    whole = question.kind is QuestionType.INTEGER
    for op, other in _comparisons(question.constraint.tree, question.name):
        bound = _bound(other, answers)
        if bound is None or (op in ("<", ">") and not whole):  # "less than 2,5" has no last number
            continue
        if whole:
            bound = Bound(_whole(op, bound.value), bound.source)
        if op in (">", ">="):
            low = bound if low is None or bound.value > low.value else low
        else:
            high = bound if high is None or bound.value < high.value else high
    if low is not None and high is not None and high.value < low.value:
        return Limits(None, None)  # earlier answers leave no room: the constraint message will explain
    return Limits(low, high)
