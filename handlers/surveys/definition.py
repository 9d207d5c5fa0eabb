"""A survey as the engine sees it, whichever file it came from (our TOML or an XLSForm).

A form is a tree: questions, groups (a heading and a shared `relevant`) and repeats (the same questions
asked once per member, plot, animal…). The engine walks `Survey.items`; what only needs every question
(summaries, indicators, the export's columns) reads the flattened `Survey.questions`.

Answers (SurveyResponse.answers) mirror the tree, with groups flattened away:
    {"hh_size": 3, "members": [{"m_name": "Mai", "age": 30}, {...}], "members#done": true}
a repeat's key holds one dict per instance; "<repeat>#done" marks an open repeat (no count) that the
resident ended ("thêm người nữa không?" → không); a skipped question is present with None.
"#language" holds, by person id, the language each member chose to read the form in (no question's
name has a "#"; the export and the scorecard read answers by question).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from handlers.surveys.expr import Expr
from handlers.surveys.secondary import Element

# (language as the form names it, text) for each language but the form's default; the default is `label`
Translations = tuple[tuple[str, str], ...]
DONE_SUFFIX = "#done"
LANGUAGES = "#language"


class QuestionType(StrEnum):
    """What a question asks for: XLSForm's `type` column (pyxform's names), and our phone number."""

    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    TIME = "time"
    DATETIME = "datetime"
    PHONE = "phone"  # our TOML only: a Vietnamese phone number
    GEOPOINT = "geopoint"
    GEOTRACE = "geotrace"
    GEOSHAPE = "geoshape"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    RANGE = "range"
    RANK = "rank"
    ACKNOWLEDGE = "acknowledge"  # also XLSForm's `trigger`
    BARCODE = "barcode"  # typed: a chat has no scanner
    NOTE = "note"  # shown, never answered
    CALCULATE = "calculate"  # computed from other answers, never asked
    METADATA = "metadata"  # start, end, today, deviceid…: filled by the bot or left empty, never asked


# kinds whose value the resident gives
ASKED = frozenset(QuestionType) - {QuestionType.NOTE, QuestionType.CALCULATE, QuestionType.METADATA}
MEDIA = frozenset({QuestionType.IMAGE, QuestionType.AUDIO, QuestionType.VIDEO, QuestionType.FILE})


def translated(default: str, translations: Translations, language: str) -> str:
    """The text in `language` where the form has it, else the default language's."""
    return next((text for lang, text in translations if lang == language and text), default)


@dataclass(frozen=True)
class Option:
    """One answer a select question offers: the value stored, the label shown."""

    value: str
    label: str
    labels: Translations = ()
    # the choices sheet's other columns (a choice_filter reads them: `prov = ${prov}`)
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Question:
    name: str  # the key of its answer in its scope (the form's name; unique in the scope)
    kind: QuestionType
    label: str
    hint: str = ""
    required: bool = False
    choices: tuple[Option, ...] = ()
    constraint: Expr | None = None
    constraint_message: str = ""
    relevant: Expr | None = None  # the enclosing groups' relevants AND-ed in
    labels: Translations = ()
    hints: Translations = ()
    scope: tuple[str, ...] = ()  # the repeats it is inside, outermost first
    calculation: Expr | None = None  # CALCULATE; also any question's `calculation` (ODK's read-only value)
    choice_filter: Expr | None = None  # evaluated for each choice; bare names are the choice's columns
    default: str = ""
    required_message: str = ""
    required_if: Expr | None = None  # XLSForm's `required` as an expression: required while it is true
    read_only: bool = False
    appearance: str = ""
    parameters: tuple[tuple[str, str], ...] = ()  # range start/end/step, …
    metadata: str = ""  # METADATA: which (start, end, today, deviceid, username, phonenumber, audit, …)
    other_of: str = ""  # the text question pyxform adds for `or_other`: the select it specifies

    def choice_label(self, value: str, language: str = "") -> str:
        choice = next((c for c in self.choices if c.value == value), None)
        return translated(choice.label, choice.labels, language) if choice else value

    def label_in(self, language: str) -> str:
        return translated(self.label, self.labels, language)

    def hint_in(self, language: str) -> str:
        return translated(self.hint, self.hints, language)


@dataclass(frozen=True)
class Group:
    """A heading over some questions; its `relevant` is already AND-ed into each question inside."""

    name: str
    label: str = ""
    labels: Translations = ()
    children: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Repeat:
    """The same questions asked once per instance (a household's members). `count` (repeat_count) fixes
    how many; without it the resident is asked after each instance whether there is another."""

    name: str
    label: str = ""
    labels: Translations = ()
    children: tuple[Item, ...] = ()
    relevant: Expr | None = None  # whether to ask any instance at all (enclosing groups' AND-ed in)
    count: Expr | None = None
    scope: tuple[str, ...] = ()  # the repeats it is inside, outermost first

    def label_in(self, language: str) -> str:
        return translated(self.label, self.labels, language)


Item = Question | Group | Repeat


def flatten(items: tuple[Item, ...]) -> tuple[Question, ...]:
    """Every question of a tree, in the order of the form."""
    found: list[Question] = []
    for item in items:
        if isinstance(item, Question):
            found.append(item)
        else:
            found.extend(flatten(item.children))
    return tuple(found)


def repeats_of(items: tuple[Item, ...]) -> tuple[Repeat, ...]:
    """Every repeat of a tree, outer before inner."""
    found: list[Repeat] = []
    for item in items:
        if isinstance(item, Repeat):
            found.append(item)
        if not isinstance(item, Question):
            found.extend(repeats_of(item.children))
    return tuple(found)


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
    questions: tuple[Question, ...]  # every question, flattened; a TOML form gives only these
    indicators: tuple[Indicator, ...] = ()
    source: str = ""  # the file it was read from
    items: tuple[Item, ...] = ()  # the tree; empty: the questions, in order, are the tree
    # the form's languages, the one shown by default first (Vietnamese where the form has it); empty: one
    languages: tuple[str, ...] = ()
    # what instance('id') and pulldata('id', …) read: the form's choice lists and files, by instance id
    instances: dict[str, Element] = field(default_factory=dict, repr=False, compare=False)
    by_name: dict[str, Question] = field(init=False, repr=False, compare=False)
    repeats: dict[str, Repeat] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.items:
            object.__setattr__(self, "items", self.questions)
        object.__setattr__(self, "by_name", {q.name: q for q in self.questions})
        object.__setattr__(self, "repeats", {r.name: r for r in repeats_of(self.items)})
