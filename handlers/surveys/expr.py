"""The expression language of XLSForm columns (relevant, constraint, calculation, choice_filter,
repeat_count, labels' ${name}): an XPath 1.0 subset, also used for indicator numerators and denominators.

A form file comes from outside, so expressions are parsed by a small recursive-descent parser and
walked by an evaluator that knows a fixed set of functions: nothing in a form can run Python code, and
the nesting an expression may have is bounded (a clean ExprError, never a RecursionError).
Truth is Python's bool(): None (unanswered), "", 0, False and [] are false, as in XPath.

`${name}` is looked up through a Resolver: the engine's resolves it relative to the repeat instance being
asked (answers.py); without one, a name is read at the top of the answers, else gathered from every
repeat instance that holds it (so an indicator can say `sum(${has_phone})`).
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Protocol

from handlers.surveys.secondary import Element

MAX_LENGTH = 10_000  # characters of one expression
MAX_NESTING = 32  # brackets and calls inside each other: each costs the parser ~10 Python frames
MAX_DEPTH = 200  # of the tree, `a + b + c …` chains included: the evaluator recurses that deep
_SAFE_INTEGER = 2**53  # beyond it numbers are floats, as every XPath number is


class ExprError(Exception):
    """`reason` is a machine code (the message lives in a template); `detail` the offending token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Literal:
    value: int | float | str


@dataclass(frozen=True)
class Current:
    """`.`: the value of the question being checked."""


@dataclass(frozen=True)
class Parent:
    """`..`: only as position(..), the instance of the repeat being asked."""


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Column:
    """A bare name in a choice_filter: that column of the choice being filtered (`name`: its value)."""

    name: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Step:
    """One step of a path into a secondary instance: the children named `name` (`*`: all) that each
    predicate keeps in turn (a number keeps that position, counted from 1)."""

    name: str
    predicates: tuple[Node, ...] = ()


@dataclass(frozen=True)
class InstancePath:
    """`instance('id')/root/item[…]/label`: the elements it reaches, as a node-set of their values."""

    instance: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class RelativePath:
    """A bare `column` or `a/b` inside a predicate: from the element the predicate is checking."""

    steps: tuple[Step, ...]


Node = Literal | Current | Parent | Ref | Column | Negate | Binary | Call | InstancePath | RelativePath

# a question's name: XML names as XLSForm allows them (letters, digits, _, . and -)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d*)?|\.\d+)
    | (?P<string>'[^']*'|"[^"]*")
    | \$\{(?P<ref>[^}]*)\}
    # XPath names may hold hyphens (count-selected) and a namespace prefix (jr:choice-name); a
    # choice_filter's column may name a language (label::English)
    | (?P<name>(?:[A-Za-z_]\w*:)?[A-Za-z_]\w*(?:-[A-Za-z_]\w*)*(?:::\w+)?)
    | (?P<op>!=|<=|>=|\.\.|[=<>+\-*(),.|/\[\]])
    )""",
    re.VERBOSE,
)
# lowest precedence first; `and`, `or`, `div`, `mod` arrive as name tokens
_LEVELS: tuple[set[str], ...] = ({"or"}, {"and"}, {"=", "!="}, {"<", "<=", ">", ">="}, {"+", "-"}, {"*", "div", "mod"})
_MANY = 1_000
# the functions a form may call: name -> (fewest, most) arguments
KNOWN_FUNCTIONS: dict[str, tuple[int, int]] = {
    "not": (1, 1), "true": (0, 0), "false": (0, 0), "boolean": (1, 1), "if": (3, 3),
    "selected": (2, 2), "count-selected": (1, 1), "selected-at": (2, 2), "jr:choice-name": (2, 2),
    "string-length": (1, 1), "regex": (2, 2), "concat": (0, _MANY), "join": (2, 2), "string": (1, 1),
    "contains": (2, 2), "starts-with": (2, 2), "ends-with": (2, 2), "substr": (2, 3), "substring": (2, 3),
    "substring-before": (2, 2), "substring-after": (2, 2), "normalize-space": (1, 1), "coalesce": (2, _MANY),
    "number": (1, 1), "int": (1, 1), "round": (1, 2), "floor": (1, 1), "ceiling": (1, 1), "abs": (1, 1),
    "pow": (2, 2), "sum": (1, 1), "count": (1, 1), "count-non-empty": (1, 1), "min": (1, _MANY),
    "max": (1, _MANY), "position": (0, 1), "indexed-repeat": (3, 9),
    "today": (0, 0), "now": (0, 0), "date": (1, 1), "format-date": (2, 2), "format-date-time": (2, 2),
    "distance": (1, _MANY), "area": (1, 1),
    "once": (1, 1), "uuid": (0, 1),  # uuid() is random: answers.py computes a calculation reading no answer once
    # the form's choice lists and the files given with it: the first argument names one, as a literal
    "instance": (1, 1), "pulldata": (4, 4),
}  # fmt: skip
_OPERATOR_WORDS = frozenset({"and", "or", "div", "mod"})
# functions that read every value of a repeat's question; the others read its first
_OVER_NODES = frozenset({"sum", "count", "count-non-empty", "min", "max", "join", "distance"})


def _unexpected(kind: str, text: str) -> ExprError:
    # /data/x paths are how older forms referred to questions: say so rather than "syntax"
    return ExprError("path" if kind == "error" and text.startswith("/") else "syntax", text)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            # reported only when the parser gets here, so errors come in reading order
            tokens.append(("error", text[position:].split(maxsplit=1)[0]))
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, *, choice_filter: bool) -> None:
        self.tokens = _tokenize(text)
        self.position = 0
        self.references: set[str] = set()
        self.instances: set[str] = set()
        self.choice_filter = choice_filter
        self.nesting = 0
        self.predicates = 0  # how deep inside [ … ]: there a bare name is a path from the element checked

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def expect(self, op: str) -> None:
        kind, text = self.take()
        if kind == "end" and op in (")", "]"):
            raise ExprError("unclosed", op)
        if (kind, text) != ("op", op):
            raise _unexpected(kind, text)

    def whole(self) -> Node:
        tree = self.binary(0)
        if self.position < len(self.tokens):
            raise _unexpected(*self.peek())
        return tree

    def nested(self) -> Node:
        """An expression inside brackets or a call's arguments."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ExprError("too_deep", str(MAX_NESTING))
        inner = self.binary(0)
        self.nesting -= 1
        return inner

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] in ("op", "name") and self.peek()[1] in _LEVELS[level]:
            op = self.take()[1]
            left = Binary(op, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        signs = 0
        while self.peek() == ("op", "-"):  # a loop: "- - - … 1" cannot recurse deep
            self.take()
            signs += 1
        node = self.primary()
        return Negate(node) if signs % 2 else node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Literal(_literal_number(text))
        if kind == "string":
            return Literal(text[1:-1])
        if kind == "ref":
            if not NAME.fullmatch(text):
                raise ExprError("bad_reference", text)
            self.references.add(text)
            return Ref(text)
        if (kind, text) == ("op", "("):
            inner = self.nested()
            self.expect(")")
            return inner
        if (kind, text) == ("op", "."):
            return Current()
        if kind == "name" and self.peek() == ("op", "("):
            return self.call(text)
        if kind == "name" and self.predicates:
            return RelativePath((Step(text, self.predicates_of()), *self.steps()))
        if kind == "name" and self.choice_filter and not re.search(r"\w:\w", text):
            return Column(text)
        if kind == "name" and self.peek()[0] == "name" and self.peek()[1] not in _OPERATOR_WORDS:
            raise ExprError("words", text)  # "because pyxform doesn't know": prose, not an expression
        if kind == "name":
            raise ExprError("path", text)  # a bare name is an XPath step to a node of the form
        if (kind, text) == ("op", "/"):
            raise ExprError("path", self.path_text())
        raise _unexpected(kind, text)

    def path_text(self) -> str:
        """An absolute path left in an expression (`/data/x` where no question is), as written."""
        text = "/"
        while self.peek()[0] == "name" or self.peek() == ("op", "/"):
            text += self.take()[1]
        return text

    def steps(self) -> tuple[Step, ...]:
        found: list[Step] = []
        while self.peek() == ("op", "/"):
            self.take()
            kind, text = self.take()
            if kind != "name" and (kind, text) != ("op", "*"):
                raise _unexpected(kind, text)
            found.append(Step(text, self.predicates_of()))
        return tuple(found)

    def predicates_of(self) -> tuple[Node, ...]:
        found: list[Node] = []
        while self.peek() == ("op", "["):
            self.take()
            self.predicates += 1
            found.append(self.nested())
            self.predicates -= 1
            self.expect("]")
        return tuple(found)

    def call(self, name: str) -> Node:
        if name not in KNOWN_FUNCTIONS:
            raise ExprError("unknown_function", name)
        if name == "instance":
            return self.instance_path()
        self.expect("(")
        args: list[Node] = []
        if name == "position" and self.peek() == ("op", ".."):
            self.take()
            args.append(Parent())
        elif self.peek() != ("op", ")"):
            args.append(self.nested())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.nested())
        self.expect(")")
        fewest, most = KNOWN_FUNCTIONS[name]
        if not fewest <= len(args) <= most:
            raise ExprError("arity", name)
        if name == "regex":
            _check_pattern(args[1])
        if name == "indexed-repeat":
            _check_indexed(args)
        if name == "jr:choice-name":
            args[1] = _question_named(args[1])
        if name == "position" and args and not isinstance(args[0], Parent):
            raise ExprError("arity", name)
        if name == "pulldata":
            self.instances.add(_instance_name(args[0], name))
        return Call(name, tuple(args))

    def instance_path(self) -> InstancePath:
        self.expect("(")
        argument = self.nested()
        self.expect(")")
        name = _instance_name(argument, "instance")
        self.instances.add(name)
        return InstancePath(name, self.steps())


def _literal_number(text: str) -> int | float:
    # a 5,000-digit literal would be an int Python refuses to print: XPath numbers are doubles anyway
    return float(text) if "." in text or len(text) > 15 else int(text)


def _instance_name(node: Node, function: str) -> str:
    """instance() and pulldata() name their list or file as a literal, so the import can check it is there."""
    if not isinstance(node, Literal) or not isinstance(node.value, str) or not node.value.strip():
        raise ExprError("arity", function)
    return node.value.strip()


def _check_pattern(node: Node) -> None:
    """Only a literal pattern, checked now: a bad one is the form author's mistake, not the user's."""
    if not isinstance(node, Literal) or not isinstance(node.value, str):
        raise ExprError("bad_regex", "")
    try:
        re.compile(node.value)
    except re.error as error:
        raise ExprError("bad_regex", node.value) from error


def _check_indexed(args: list[Node]) -> None:
    """indexed-repeat(${x}, ${repeat}, n[, ${inner repeat}, m …]): names where names go."""
    if len(args) % 2 == 0 or not all(isinstance(arg, Ref) for arg in args[0::2][:1] + args[1::2]):
        raise ExprError("arity", "indexed-repeat")


def _question_named(node: Node) -> Node:
    """jr:choice-name's second argument names the question as a string: '${q}' (pyxform's form)."""
    if isinstance(node, Literal) and isinstance(node.value, str):
        found = re.fullmatch(r"\s*\$\{([^}]*)\}\s*", node.value)
        # else a path ('/data/grp/q'): its last step names the question
        return Ref(found.group(1)) if found else Ref(node.value.strip().rsplit("/", 1)[-1])
    if isinstance(node, Ref):
        return node
    raise ExprError("arity", "jr:choice-name")


def _depth(tree: Node) -> int:
    """How deep the tree goes, counted without recursion (a chain of 5,000 `+` must not blow up here)."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        match node:
            case Negate(operand):
                stack.append((operand, depth + 1))
            case Binary(_, left, right):
                stack.extend(((left, depth + 1), (right, depth + 1)))
            case Call(_, args):
                stack.extend((arg, depth + 1) for arg in args)
            case InstancePath(_, steps) | RelativePath(steps):
                stack.extend((predicate, depth + 1) for step in steps for predicate in step.predicates)
    return deepest


# --- values ---------------------------------------------------------------------------------------------


class NodeSet(tuple[object, ...]):
    """Every value of a question inside a repeat, read from outside it: sum() and count() take them all,
    anything else the first (as XPath does)."""

    __slots__ = ()


def _first(value: object) -> object:
    if isinstance(value, NodeSet):
        return value[0] if value else None
    return value


def _string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < _SAFE_INTEGER:
            return str(int(value))  # XPath's string(2.0) is "2"
        return repr(value)
    if isinstance(value, list):
        return " ".join(map(str, value))  # how XForms stores a select_multiple answer
    if isinstance(value, dict):  # a media answer: its file name, as ODK stores it
        return str(value.get("filename", ""))
    return str(value)


_NUMERIC = re.compile(r"\s*-?(?:\d+\.?\d*|\.\d+)\s*")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?[^ ]*)?")
_EPOCH = date(1970, 1, 1)


def _number(value: object) -> int | float | None:
    """XPath's number(): None for NaN; a date or date-time counts days since 1970 (ODK: `today() - ${born}`)."""
    if isinstance(value, bool):
        return int(value)  # a true comparison counts 1 in an indicator sum
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # infinity too: no index or date can use it
    if isinstance(value, str):
        if _NUMERIC.fullmatch(value):
            value = value.strip()
            return _number(float(value)) if "." in value or len(value) > 16 else int(value)
        return _days(value)
    return None


def as_number(value: object) -> int | float | None:
    """XPath's number() of a value (a repeat's values: the first): None where it is NaN."""
    return _number(_first(value))


def as_text(value: object) -> str:
    """XPath's string() of a value: "" for nothing, 2 for 2.0, a select_multiple's values spaced."""
    return _string(_first(value))


def _days(text: str) -> int | float | None:
    found = _ISO.fullmatch(text.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part) if part else 0 for part in found.groups())
    try:
        days = (date(year, month, day) - _EPOCH).days
    except ValueError:
        return None
    return days + (hour * 3600 + minute * 60 + second) / 86400 if found.group(4) else days


def _finite(value: float) -> int | float | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value
    return float(value) if abs(value) > _SAFE_INTEGER else value


def _items(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else _string(value).split()


def _equal(left: object, right: object) -> bool:
    x, y = _number(left), _number(right)
    return x == y if x is not None and y is not None else _string(left) == _string(right)


def equality_key(value: object) -> tuple[str, object] | None:
    """Equal keys for values `=` finds equal (numbers as numbers, else text), so a choice list can be
    indexed; None for a value whose equality this cannot index (a boolean compares as one)."""
    value = _first(value)
    if isinstance(value, bool):
        return None
    number = _number(value)
    return ("number", number) if number is not None else ("text", _string(value))


def column_equalities(tree: Node) -> list[tuple[str, Expr]] | None:
    """`col = expr and col2 = expr2 …` (either side), each expr without a bare name: the (column, expr)
    pairs, so a choice_filter is a lookup instead of one evaluation per choice; None for any other form."""
    match tree:
        case Binary("and", left, right):
            first, second = column_equalities(left), column_equalities(right)
            return None if first is None or second is None else first + second
        case Binary("=", Column(name), other) | Binary("=", other, Column(name)) if not _has_column(other):
            return [(name, Expr("", other, frozenset()))]
    return None


def _has_column(tree: Node) -> bool:
    match tree:
        case Column():
            return True
        case Negate(operand):
            return _has_column(operand)
        case Binary(_, left, right):
            return _has_column(left) or _has_column(right)
        case Call(_, args):
            return any(_has_column(arg) for arg in args)
    return False


_ORDER: dict[str, Callable[[Any, Any], bool]] = {  # only ever given two numbers or two strings
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _compare(op: str, left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        left, right = bool(left), bool(right)  # XPath compares with a boolean as booleans
    if op in ("=", "!="):
        return _equal(left, right) == (op == "=")
    if left is None or right is None:
        return False  # an unanswered question has no order (XPath NaN)
    x, y = _number(left), _number(right)
    if x is not None and y is not None:
        return _ORDER[op](x, y)
    return _ORDER[op](_string(left), _string(right))


def _mod(x: float, y: float) -> int | float:
    remainder = math.fmod(x, y)  # XPath mod keeps the dividend's sign, unlike Python's %
    return int(remainder) if isinstance(x, int) and isinstance(y, int) else remainder


_ARITHMETIC: dict[str, Callable[[int | float, int | float], int | float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "div": operator.truediv, "mod": _mod,
}


def _arithmetic(op: str, left: object, right: object) -> int | float | None:
    x, y = _number(left), _number(right)
    if x is None or y is None or (y == 0 and op in ("div", "mod")):
        return None  # unanswered, not a number or undefined: XPath NaN, which fails every check
    try:
        return _finite(_ARITHMETIC[op](x, y))
    except OverflowError:
        return None


def _all(value: object) -> list[object]:
    if isinstance(value, NodeSet):
        return list(value)
    return [] if value is None else [value]


def _numbers(values: list[object]) -> list[int | float] | None:
    numbers = [_number(v) for v in values]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def _sum(value: object) -> int | float | None:
    numbers = _numbers([v for v in _all(value) if v is not None and v != ""])
    return None if numbers is None else _finite(sum(numbers))


def _extreme(pick: Callable[[list[int | float]], int | float]) -> Callable[..., object]:
    def extreme(*args: object) -> int | float | None:
        values = [v for arg in args for v in _all(arg) if v is not None and v != ""]
        numbers = _numbers(values)
        return pick(numbers) if numbers else None

    return extreme


def _round(value: object, digits: object = 0) -> int | float | None:
    x, d = _number(value), _number(digits)
    if x is None or d is None or not math.isfinite(x):
        return None
    places = max(-15, min(15, int(d)))
    scale = 10.0**places
    rounded = math.floor(x * scale + 0.5) / scale  # XPath rounds halves up (-2.5 → -2)
    return int(rounded) if places <= 0 and abs(rounded) < _SAFE_INTEGER else rounded


def _whole_or_part(value: object, how: Callable[[int | float], int | float]) -> int | float | None:
    x = _number(value)
    return None if x is None else how(x)


def _whole(value: object, how: Callable[[float], int]) -> int | None:
    x = _number(value)
    return how(x) if x is not None and math.isfinite(x) else None


def _substr(text: object, start: object, end: object = None) -> str:
    """ODK's substr: 0-based start, end excluded."""
    s, b, e = _string(text), _number(start), _number(end) if end is not None else None
    if b is None:
        return ""
    return s[max(0, int(b)) : None if e is None else max(0, int(e))]


def _date(value: object) -> str | None:
    """date(): a date from an ISO text or from days since 1970."""
    if isinstance(value, str) and _ISO.fullmatch(value.strip()):
        return value.strip()[:10] if _days(value) is not None else None
    days = _number(value)
    if days is None or not -700_000 < days < 2_900_000:  # date() covers years 1..9999
        return None
    return (_EPOCH + timedelta(days=math.floor(days))).isoformat()


# CLDR's Vietnamese abbreviations, as ODK shows %a on a Vietnamese phone: Sunday first (isoweekday % 7)
_WEEKDAYS = ("CN", "Th 2", "Th 3", "Th 4", "Th 5", "Th 6", "Th 7")


def _format_date(value: object, pattern: object) -> str:
    """ODK's format-date: %Y %y %m %n %b %d %e %H %h %M %S %3 %a; anything else as written."""
    text = value if isinstance(value, str) else _date(value)
    if not text or _days(text) is None:
        return ""
    found = _ISO.fullmatch(text.strip())
    assert found is not None  # _days matched it
    year, month, day, hour, minute, second = (int(part) if part else 0 for part in found.groups())
    weekday = date(year, month, day).isoweekday() % 7
    fields = {
        "Y": f"{year:04d}", "y": f"{year % 100:02d}", "m": f"{month:02d}", "n": str(month),
        "b": f"thg {month}", "d": f"{day:02d}", "e": str(day), "H": f"{hour:02d}", "h": str(hour),
        "M": f"{minute:02d}", "S": f"{second:02d}", "3": "000", "a": _WEEKDAYS[weekday],
    }  # fmt: skip
    return re.sub(r"%(.)", lambda m: fields.get(m.group(1), m.group(0)), _string(pattern))


_EARTH = 6_378_100  # metres: JavaRosa's radius for distance() and area()


def _points(*values: object) -> list[tuple[float, float]] | None:
    """"lat lon alt acc; …" (ODK's geopoint, geotrace and geoshape) as (lat, lon) in radians."""
    found = []
    for value in values:
        for point in _string(value).split(";"):
            parts = point.split()
            if not parts:
                continue
            numbers = [_number(part) for part in parts[:2]]
            if len(numbers) < 2 or numbers[0] is None or numbers[1] is None:
                return None
            found.append((math.radians(numbers[0]), math.radians(numbers[1])))
    return found


def _distance(*values: object) -> float | None:
    """distance(): metres along the points, great circle between each two."""
    points = _points(*(v for value in values for v in _all(value)))
    if not points or len(points) < 2:
        return None
    total = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(points):
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        total += 2 * _EARTH * math.asin(min(1.0, math.sqrt(h)))
    return total


def _area(value: object) -> float | None:
    """area(): square metres inside a shape, on a sphere (the ring-area formula JavaRosa uses)."""
    points = _points(value)
    if not points or len(points) < 3:
        return None
    ring = sum(
        (lon2 - lon1) * (2 + math.sin(lat1) + math.sin(lat2))
        for (lat1, lon1), (lat2, lon2) in zip(points, points[1:] + points[:1], strict=False)
    )
    return abs(ring * _EARTH * _EARTH / 2)


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "not": lambda x: not x,
    "true": lambda: True,
    "false": lambda: False,
    "boolean": bool,
    "selected": lambda x, value: _string(value) in _items(x),
    "count-selected": lambda x: len(_items(x)),
    "selected-at": lambda x, n: _selected_at(_items(x), _number(n)),
    "string-length": lambda x: len(_string(x)),
    "regex": lambda x, pattern: re.fullmatch(pattern, _string(x)) is not None,
    "concat": lambda *xs: "".join(map(_string, xs)),
    "join": lambda sep, xs: _string(sep).join(_string(v) for v in _all(xs)),
    "string": _string,
    "contains": lambda x, y: _string(y) in _string(x),
    "starts-with": lambda x, y: _string(x).startswith(_string(y)),
    "ends-with": lambda x, y: _string(x).endswith(_string(y)),
    "substr": _substr,
    "substring": lambda s, b, n=None: _substring(_string(s), _number(b), _number(n) if n is not None else None),
    "substring-before": lambda x, y: _string(x).partition(_string(y))[0] if _string(y) in _string(x) else "",
    "substring-after": lambda x, y: _string(x).partition(_string(y))[2] if _string(y) in _string(x) else "",
    "normalize-space": lambda x: " ".join(_string(x).split()),
    "coalesce": lambda *xs: next((x for x in xs if _string(x) != ""), ""),
    "number": _number,
    "int": lambda x: _whole(x, math.trunc),
    "round": _round,
    "floor": lambda x: _whole(x, math.floor),
    "ceiling": lambda x: _whole(x, math.ceil),
    "abs": lambda x: _whole_or_part(x, abs),
    "pow": lambda x, y: _pow(_number(x), _number(y)),
    "sum": _sum,
    "count": lambda xs: len(_all(xs)),
    "count-non-empty": lambda xs: sum(1 for v in _all(xs) if _string(v) != ""),
    "min": _extreme(min),
    "max": _extreme(max),
    "date": _date,
    "format-date": _format_date,
    "format-date-time": _format_date,
    "distance": _distance,
    "area": _area,
}


def _selected_at(items: list[str], n: float | None) -> str:
    return items[int(n)] if n is not None and 0 <= n < len(items) else ""


def _substring(text: str, start: float | None, length: float | None) -> str:
    """XPath 1.0 substring: 1-based start, a length."""
    if start is None:
        return ""
    begin = max(0, round(start) - 1)
    return text[begin:] if length is None else text[begin : max(begin, round(start) - 1 + round(length))]


def _pow(x: float | None, y: float | None) -> float | None:
    if x is None or y is None:
        return None
    try:
        result = math.pow(x, y)
    except (OverflowError, ValueError):
        return None
    return result if math.isfinite(result) else None


# --- evaluation -----------------------------------------------------------------------------------------


class Resolver(Protocol):
    """Where ${name} and the repeat functions look: the engine's knows the instance being asked."""

    def ref(self, name: str) -> object: ...

    def position(self) -> int | None: ...

    def indexed(self, name: str, path: tuple[tuple[str, int], ...]) -> object: ...

    def choice_name(self, name: str, value: object) -> str: ...

    def instance(self, name: str) -> Element | None: ...


@dataclass(frozen=True)
class FlatResolver:
    """Answers without a form: a name at the top, else every repeat instance's value of it."""

    answers: Mapping[str, object]

    def ref(self, name: str) -> object:
        if name in self.answers:
            return self.answers[name]
        found = NodeSet(_gather(self.answers, name))
        return found or None

    def position(self) -> int | None:
        return None

    def indexed(self, name: str, path: tuple[tuple[str, int], ...]) -> object:
        scope: object = self.answers
        for repeat, number in path:
            instances = scope.get(repeat) if isinstance(scope, Mapping) else None
            if not isinstance(instances, list) or not 1 <= number <= len(instances):
                return None
            scope = instances[number - 1]
        return scope.get(name) if isinstance(scope, Mapping) else None

    def choice_name(self, name: str, value: object) -> str:  # noqa: ARG002 - no form: no labels to read
        return _string(value)

    def instance(self, name: str) -> Element | None:  # noqa: ARG002 - no form: no lists or files
        return None


def _gather(answers: Mapping[str, object], name: str) -> list[object]:
    found: list[object] = []
    for value in answers.values():
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            for instance in value:
                if name in instance:
                    found.append(instance[name])
                else:
                    found.extend(_gather(instance, name))
    return found


@dataclass(frozen=True)
class _Evaluation:
    answers: Mapping[str, object]
    current: object
    today: str
    now: str
    resolver: Resolver
    row: Mapping[str, str]
    context: Element | None = None  # inside a predicate: the element it is checking
    context_position: int = 0  # and its position among those checked, from 1: position() there

    def value(self, node: Node) -> object:
        match node:
            case Literal(value):
                return value
            case Ref(name):
                return self.resolver.ref(name)
            case Current():
                return self.current
            case Column(name):
                return self.row.get(name, "")
            case Negate(operand):
                number = _number(_first(self.value(operand)))
                return None if number is None else -number
            case Binary("and", left, right):
                return bool(_first(self.value(left))) and bool(_first(self.value(right)))
            case Binary("or", left, right):
                return bool(_first(self.value(left))) or bool(_first(self.value(right)))
            case Binary(op, left, right) if op in ("=", "!=") or op in _ORDER:
                return _compare(op, _first(self.value(left)), _first(self.value(right)))
            case Binary(op, left, right):
                return _arithmetic(op, _first(self.value(left)), _first(self.value(right)))
            case Call(name, args):
                return self.call(name, args)
            case InstancePath(name, steps):
                document = self.resolver.instance(name)
                return NodeSet(e.value for e in self.walk([document] if document else [], steps))
            case RelativePath(steps):
                return NodeSet(e.value for e in self.walk([self.context] if self.context else [], steps))
        raise ExprError("syntax", "")  # `..` outside position(..): nothing to evaluate

    def call(self, name: str, args: tuple[Node, ...]) -> object:
        match name, args:
            case "if", (condition, then, otherwise):
                return self.value(then if _first(self.value(condition)) else otherwise)
            case "today", ():
                return self.today
            case "now", ():
                return self.now or f"{self.today}T00:00:00"
            case "position", ():
                return self.context_position if self.context is not None else self.resolver.position()
            case "position", _:
                return self.resolver.position()
            case "indexed-repeat", (Ref(target), *pairs):
                numbers = [_number(_first(self.value(n))) for n in pairs[1::2]]
                if any(n is None for n in numbers):
                    return None
                path = tuple((r.name, int(n or 0)) for r, n in zip(pairs[0::2], numbers, strict=True) if isinstance(r, Ref))
                return self.resolver.indexed(target, path)
            case "jr:choice-name", (value, Ref(question)):
                return self.resolver.choice_name(question, _first(self.value(value)))
            case "once", (inner,):
                return self.current if _string(self.current) != "" else _first(self.value(inner))
            case "uuid", ():
                return str(uuid.uuid4())
            case "uuid", (length,):
                return _random_text(_number(_first(self.value(length))))
            case "pulldata", (Literal(source), column, key_column, key):
                return self.pulldata(str(source), *(_first(self.value(arg)) for arg in (column, key_column, key)))
        values = [self.value(arg) for arg in args]
        if name not in _OVER_NODES:
            values = [_first(v) for v in values]
        return _FUNCTIONS[name](*values)


    def walk(self, elements: list[Element], steps: tuple[Step, ...]) -> list[Element]:
        for step in steps:
            elements = [kept for parent in elements for kept in self.kept(parent, step)]
        return elements

    def kept(self, parent: Element, step: Step) -> list[Element]:
        candidates = list(parent.named(step.name))
        for number, predicate in enumerate(step.predicates):
            looked_up = _looked_up(predicate) if number == 0 else None
            if looked_up is not None:  # [column = value …]: the index gives the few that can hold
                candidates = self.matching(parent, step.name, looked_up[0], self.value(looked_up[1]))
            candidates = [
                element for position, element in enumerate(candidates, start=1)
                if _holds(replace(self, context=element, context_position=position).value(predicate), position)
            ]  # fmt: skip
        return candidates

    def matching(self, parent: Element, tag: str, column: str, value: object) -> list[Element]:
        """The children `tag` of `parent` whose `column` equals `value` (as `=` compares), through an
        index of those children built the first time (a list of 5,000 communes is one lookup)."""
        key = equality_key(value)
        if key is None:
            return [e for e in parent.named(tag) if _equal(_column_value(e, column), _first(value))]
        index = parent.indexes.get((tag, column))
        if index is None:
            index = {}
            for element in parent.named(tag):
                index.setdefault(equality_key(_column_value(element, column)), []).append(element)
            parent.indexes[(tag, column)] = index
        return index.get(key, [])

    def pulldata(self, source: str, column: object, key_column: object, key: object) -> str:
        """The `column` of the first row of the file whose `key_column` equals `key` ("" when none)."""
        document = self.resolver.instance(source)
        roots = document.named("root") if document else ()
        found = self.matching(roots[0], "item", _string(key_column), key) if roots else []
        return _column_value(found[0], _string(column)) if found else ""


def _looked_up(predicate: Node) -> tuple[str, Node] | None:
    """The (column, value) of a predicate `column = value` or `column = value and …` whose value does not
    depend on the element checked: what an index can answer."""
    match predicate:
        case Binary("and", left, _):
            return _looked_up(left)
        case Binary("=", RelativePath((Step(column, ()),)), other) | Binary(
            "=", other, RelativePath((Step(column, ()),))
        ) if not _has_path(other):
            return column, other
    return None


def _has_path(tree: Node) -> bool:
    match tree:
        case RelativePath() | Current():
            return True
        case Negate(operand):
            return _has_path(operand)
        case Binary(_, left, right):
            return _has_path(left) or _has_path(right)
        case Call(_, args):
            return any(_has_path(arg) for arg in args)
    return False


def _column_value(element: Element, column: str) -> str:
    found = element.named(column)
    return found[0].value if found else ""


def _holds(value: object, position: int) -> bool:
    """A predicate's verdict on the element at `position`: a number keeps that position, a node-set
    keeps the element when not empty (`[P_Enumerator]`: it has one), anything else by its truth."""
    if isinstance(value, NodeSet):
        return bool(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == position
    return bool(value)


def _random_text(length: float | None) -> str:
    """uuid(n): n random letters and digits (at most 64: a form cannot ask for a megabyte)."""
    wanted = max(1, min(64, int(length or 32)))
    return secrets.token_hex(32)[:wanted]


@dataclass(frozen=True)
class Expr:
    source: str
    tree: Node = field(repr=False)
    references: frozenset[str]  # names used as ${name}
    instances: frozenset[str] = frozenset()  # the lists and files read by instance('…') and pulldata('…')

    def evaluate(
        self,
        answers: Mapping[str, object],
        current: object = None,
        *,
        today: str,
        now: str = "",
        resolver: Resolver | None = None,
        row: Mapping[str, str] | None = None,
    ) -> object:
        """`today` is an ISO date: the village's local date (the server's may be another day), in tests a
        fixed one; `now` likewise a local ISO date-time. `resolver` finds ${name} (default: FlatResolver),
        `row` the columns of the choice a choice_filter is checking."""
        evaluation = _Evaluation(answers, current, today, now, resolver or FlatResolver(answers), row or {})
        return evaluation.value(self.tree)


def compile_expr(text: str, *, choice_filter: bool = False) -> Expr:
    """`choice_filter`: bare names are the choice's columns (`name` its value, `label` its label)."""
    if len(text) > MAX_LENGTH:
        raise ExprError("too_long", str(MAX_LENGTH))
    parser = _Parser(text, choice_filter=choice_filter)
    tree = parser.whole()
    if _depth(tree) > MAX_DEPTH:
        raise ExprError("too_deep", str(MAX_DEPTH))
    return Expr(text, tree, frozenset(parser.references), frozenset(parser.instances))
