"""A survey as the engine sees it, whichever file it came from (our TOML or an XLSForm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from handlers.surveys.expr import Expr


class QuestionType(StrEnum):
    """What a question asks for: XLSForm's `type` column, and our phone number."""

    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    PHONE = "phone"  # our TOML only: a Vietnamese phone number
    NOTE = "note"  # shown, never answered


@dataclass(frozen=True)
class Option:
    """One answer a select question offers: the value stored, the label shown."""

    value: str
    label: str


@dataclass(frozen=True)
class Question:
    name: str
    kind: QuestionType
    label: str
    hint: str = ""
    required: bool = False
    choices: tuple[Option, ...] = ()
    constraint: Expr | None = None
    constraint_message: str = ""
    relevant: Expr | None = None

    def choice_label(self, value: str) -> str:
        return next((c.label for c in self.choices if c.value == value), value)


@dataclass(frozen=True)
class Indicator:
    """A share over the households that answered: sum of `numerator` over sum of `denominator`, each an
    expression evaluated on one household's answers (a true comparison counts 1)."""

    code: str
    title: str
    numerator: Expr
    denominator: Expr
    numerator_text: str  # "người từ 15 tuổi có điện thoại thông minh"
    denominator_text: str  # "người từ 15 tuổi trong các hộ đã trả lời"
    target: float  # percent
    # how /baocao says it: "{numerator} trên {denominator} người từ 15 tuổi có điện thoại thông minh riêng";
    # empty: the title and the two numbers
    sentence: str = ""


@dataclass(frozen=True)
class Survey:
    code: str
    title: str
    purpose: str  # what is collected and why: shown before consent
    questions: tuple[Question, ...]
    indicators: tuple[Indicator, ...] = ()
    source: str = ""  # the file it was read from
    by_name: dict[str, Question] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {q.name: q for q in self.questions})
