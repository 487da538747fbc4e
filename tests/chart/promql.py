"""A parser for the part of PromQL the chart's alerts use, so the tests can check an `expr`
without a Prometheus: it must parse whole (balanced brackets and quotes, operators between
operands, known functions and aggregations with the argument types they take) and it yields the
selectors it reads. Anything outside that subset is refused, never passed: a new construct in an
alert needs this parser taught first.

What it does not check: Prometheus's own type rules beyond the range-vector arguments below
(e.g. `and` between two scalars), nor anything about the series' values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

AGGREGATIONS = {"sum", "min", "max", "avg", "count"}
# function -> argument kinds ("v": an instant vector or scalar expression, "r": a range vector)
FUNCTIONS = {
    "time": (),
    "absent": ("v",),
    "max_over_time": ("r",),
    "min_over_time": ("r",),
    "changes": ("r",),
}
# Binary operators by precedence, lowest first (Prometheus's order; `^` is not used here).
PRECEDENCE = [
    ("or",),
    ("and", "unless"),
    ("==", "!=", ">", "<", ">=", "<="),
    ("+", "-"),
    ("*", "/", "%"),
]
SET_OPERATORS = {"or", "and", "unless"}
KEYWORDS = {"or", "and", "unless", "on", "ignoring", "by", "without", "bool", "offset"}
DURATION = r"(?:[0-9]+(?:ms|[smhdwy]))+"

_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<duration>\[{DURATION}\])
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%<>=(){{}},])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value), in the written order
    range: str | None = None


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregation:
    op: str
    grouping: tuple[str, ...]  # the `by` labels
    expr: Node


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    on: tuple[str, ...] | None = None  # `on (...)`, None without it


Node = Union[Selector, Number, Call, Aggregation, Binary]  # noqa: UP007 (a runtime alias)


@dataclass
class _Tokens:
    items: list[tuple[str, str]]
    pos: int = 0
    text: str = field(default="")

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise PromQLError(f"unexpected end of {self.text!r}")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        _, got = self.take()
        if got != value:
            raise PromQLError(f"expected {value!r}, got {got!r} in {self.text!r}")

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[1] in values


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise PromQLError(f"cannot read {text[pos : pos + 20]!r} in {text!r}")
        kind = match.lastgroup
        assert kind
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def parse(text: str) -> Node:
    tokens = _Tokens(tokenize(text), text=text)
    node = _binary(tokens, 0)
    if tokens.peek() is not None:
        raise PromQLError(f"left over from {tokens.peek()!r} in {text!r}")
    return node


def selectors(node: Node) -> list[Selector]:
    """Every selector the expression reads, in order."""
    if isinstance(node, Selector):
        return [node]
    if isinstance(node, Call):
        return [s for arg in node.args for s in selectors(arg)]
    if isinstance(node, Aggregation):
        return selectors(node.expr)
    if isinstance(node, Binary):
        return selectors(node.lhs) + selectors(node.rhs)
    return []


def without_matcher(node: Node, label: str) -> Node:
    """The same expression with every matcher on `label` dropped."""
    if isinstance(node, Selector):
        kept = tuple(m for m in node.matchers if m[0] != label)
        return Selector(node.metric, kept, node.range)
    if isinstance(node, Call):
        return Call(node.function, tuple(without_matcher(a, label) for a in node.args))
    if isinstance(node, Aggregation):
        return Aggregation(node.op, node.grouping, without_matcher(node.expr, label))
    if isinstance(node, Binary):
        lhs, rhs = without_matcher(node.lhs, label), without_matcher(node.rhs, label)
        return Binary(node.op, lhs, rhs, node.on)
    return node


def _binary(tokens: _Tokens, level: int) -> Node:
    if level == len(PRECEDENCE):
        return _primary(tokens)
    node = _binary(tokens, level + 1)
    while tokens.at(*PRECEDENCE[level]):
        _, op = tokens.take()
        on = None
        if tokens.at("on"):
            tokens.take()
            on = _labels(tokens)
        rhs = _binary(tokens, level + 1)
        if op in SET_OPERATORS and (isinstance(node, Number) or isinstance(rhs, Number)):
            raise PromQLError(f"{op!r} needs vectors on both sides in {tokens.text!r}")
        node = Binary(op, node, rhs, on)
    return node


def _labels(tokens: _Tokens) -> tuple[str, ...]:
    tokens.expect("(")
    names: list[str] = []
    while not tokens.at(")"):
        kind, name = tokens.take()
        if kind != "ident":
            raise PromQLError(f"expected a label name, got {name!r} in {tokens.text!r}")
        names.append(name)
        if not tokens.at(")"):
            tokens.expect(",")
    tokens.expect(")")
    return tuple(names)


def _primary(tokens: _Tokens) -> Node:
    kind, value = tokens.take()
    if kind == "number":
        return Number(float(value))
    if value == "(":
        node = _binary(tokens, 0)
        tokens.expect(")")
        return node
    if kind != "ident" or value in KEYWORDS:
        raise PromQLError(f"unexpected {value!r} in {tokens.text!r}")
    if value in AGGREGATIONS:
        grouping: tuple[str, ...] = ()
        if tokens.at("by"):
            tokens.take()
            grouping = _labels(tokens)
        tokens.expect("(")
        inner = _binary(tokens, 0)
        tokens.expect(")")
        if isinstance(inner, Selector) and inner.range:
            raise PromQLError(f"{value} over a range vector in {tokens.text!r}")
        return Aggregation(value, grouping, inner)
    if tokens.at("("):
        if value not in FUNCTIONS:
            raise PromQLError(f"unknown function {value!r} in {tokens.text!r}")
        tokens.take()
        args: list[Node] = []
        while not tokens.at(")"):
            args.append(_binary(tokens, 0))
            if not tokens.at(")"):
                tokens.expect(",")
        tokens.expect(")")
        kinds = FUNCTIONS[value]
        if len(args) != len(kinds):
            raise PromQLError(f"{value} takes {len(kinds)} argument(s) in {tokens.text!r}")
        for arg, wanted in zip(args, kinds, strict=True):
            is_range = isinstance(arg, Selector) and arg.range is not None
            if is_range != (wanted == "r"):
                raise PromQLError(f"{value}: wrong argument type in {tokens.text!r}")
        return Call(value, tuple(args))
    return _selector(tokens, value)


def _selector(tokens: _Tokens, metric: str) -> Selector:
    matchers: list[tuple[str, str, str]] = []
    if tokens.at("{"):
        tokens.take()
        while not tokens.at("}"):
            kind, label = tokens.take()
            if kind != "ident":
                raise PromQLError(f"expected a label name, got {label!r} in {tokens.text!r}")
            _, op = tokens.take()
            if op not in ("=", "!=", "=~", "!~"):
                raise PromQLError(f"expected a matcher operator, got {op!r} in {tokens.text!r}")
            kind, quoted = tokens.take()
            if kind != "string":
                raise PromQLError(f"expected a quoted value, got {quoted!r} in {tokens.text!r}")
            matchers.append((label, op, quoted[1:-1]))
            if not tokens.at("}"):
                tokens.expect(",")
        tokens.expect("}")
    window = None
    token = tokens.peek()
    if token is not None and token[0] == "duration":
        window = tokens.take()[1][1:-1]
    return Selector(metric, tuple(matchers), window)
