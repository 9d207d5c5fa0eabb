"""The expression language of XLSForm `relevant` and `constraint` columns (an XPath 1.0 subset), also
used for indicator numerators and denominators.

A form file comes from outside, so expressions are parsed by a small recursive-descent parser and
walked by an evaluator that knows a fixed set of functions: nothing in a form can run Python code.
Truth is Python's bool(): None (unanswered), "", 0, False and [] are false, as in XPath.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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
class Ref:
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


Node = Literal | Current | Ref | Negate | Binary | Call

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d*)?|\.\d+)
    | (?P<string>'[^']*'|"[^"]*")
    | \$\{(?P<ref>[^}]*)\}
    # XPath names may hold hyphens (count-selected) and a namespace prefix (jr:choice-name)
    | (?P<name>(?:[A-Za-z_]\w*:)?[A-Za-z_]\w*(?:-[A-Za-z_]\w*)*)
    | (?P<op>!=|<=|>=|[=<>+\-*(),.])
    )""",
    re.VERBOSE,
)
# lowest precedence first; `and`, `or`, `div`, `mod` arrive as name tokens
_LEVELS: tuple[set[str], ...] = ({"or"}, {"and"}, {"=", "!="}, {"<", "<=", ">", ">="}, {"+", "-"}, {"*", "div", "mod"})
_ARITY = {
    "not": 1, "selected": 2, "count-selected": 1, "string-length": 1, "regex": 2,
    "today": 0, "true": 0, "false": 0, "if": 3,
}


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
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0
        self.references: set[str] = set()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def expect(self, op: str) -> None:
        kind, text = self.take()
        if (kind, text) != ("op", op):
            raise _unexpected(kind, text)

    def whole(self) -> Node:
        tree = self.binary(0)
        if self.position < len(self.tokens):
            raise _unexpected(*self.peek())
        return tree

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] in ("op", "name") and self.peek()[1] in _LEVELS[level]:
            op = self.take()[1]
            left = Binary(op, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.take()
            return Negate(self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Literal(float(text) if "." in text else int(text))
        if kind == "string":
            return Literal(text[1:-1])
        if kind == "ref":
            if not NAME.fullmatch(text):
                raise ExprError("bad_reference", text)
            self.references.add(text)
            return Ref(text)
        if (kind, text) == ("op", "("):
            inner = self.binary(0)
            self.expect(")")
            return inner
        if (kind, text) == ("op", "."):
            return Current()
        if kind == "name" and self.peek() == ("op", "("):
            return self.call(text)
        if kind == "name":
            raise ExprError("path", text)  # a bare name is an XPath step to a node of the form
        raise _unexpected(kind, text)

    def call(self, name: str) -> Call:
        if name not in _ARITY:
            raise ExprError("unknown_function", name)
        self.expect("(")
        args: list[Node] = []
        if self.peek() != ("op", ")"):
            args.append(self.binary(0))
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.binary(0))
        self.expect(")")
        if len(args) != _ARITY[name]:
            raise ExprError("arity", name)
        if name == "regex":
            _check_pattern(args[1])
        return Call(name, tuple(args))


def _check_pattern(node: Node) -> None:
    """Only a literal pattern, checked now: a bad one is the form author's mistake, not the user's."""
    if not isinstance(node, Literal) or not isinstance(node.value, str):
        raise ExprError("bad_regex", "")
    try:
        re.compile(node.value)
    except re.error as error:
        raise ExprError("bad_regex", node.value) from error


def _string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(map(str, value))  # how XForms stores a select_multiple answer
    return str(value)


_NUMERIC = re.compile(r"\s*-?(?:\d+\.?\d*|\.\d+)\s*")


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return int(value)  # a true comparison counts 1 in an indicator sum
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return float(value) if "." in value else int(value)
    return None


def _items(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else _string(value).split()


def _equal(left: object, right: object) -> bool:
    x, y = _number(left), _number(right)
    return x == y if x is not None and y is not None else _string(left) == _string(right)


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
    return _ORDER[op](_string(left), _string(right))  # ISO dates order correctly as text


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
    return _ARITHMETIC[op](x, y)


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "not": lambda x: not x,
    "selected": lambda x, value: _string(value) in _items(x),
    "count-selected": lambda x: len(_items(x)),
    "string-length": lambda x: len(_string(x)),
    "regex": lambda x, pattern: re.fullmatch(pattern, _string(x)) is not None,
    "true": lambda: True,
    "false": lambda: False,
}


@dataclass(frozen=True)
class _Evaluation:
    answers: Mapping[str, object]
    current: object
    today: str

    def value(self, node: Node) -> object:
        match node:
            case Literal(value):
                return value
            case Current():
                return self.current
            case Ref(name):
                return self.answers.get(name)
            case Negate(operand):
                number = _number(self.value(operand))
                return None if number is None else -number
            case Binary("and", left, right):
                return bool(self.value(left)) and bool(self.value(right))
            case Binary("or", left, right):
                return bool(self.value(left)) or bool(self.value(right))
            case Binary(op, left, right) if op in ("=", "!=") or op in _ORDER:
                return _compare(op, self.value(left), self.value(right))
            case Binary(op, left, right):
                return _arithmetic(op, self.value(left), self.value(right))
            case Call("if", (condition, then, otherwise)):
                return self.value(then if self.value(condition) else otherwise)
            case Call("today", ()):
                return self.today
            case Call(name, args):
                return _FUNCTIONS[name](*(self.value(arg) for arg in args))
        raise AssertionError(node)


@dataclass(frozen=True)
class Expr:
    source: str
    tree: Node = field(repr=False)
    references: frozenset[str]  # names used as ${name}

    def evaluate(self, answers: Mapping[str, object], current: object = None, *, today: str) -> object:
        """`today` is an ISO date: the village's local date (the server's may be another day), in tests a fixed one."""
        return _Evaluation(answers, current, today).value(self.tree)


def compile_expr(text: str) -> Expr:
    parser = _Parser(text)
    tree = parser.whole()
    return Expr(text, tree, frozenset(parser.references))
