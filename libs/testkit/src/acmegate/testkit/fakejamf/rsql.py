"""A small RSQL parser and evaluator, as Jamf Pro's ``filter`` parameter takes it.

Jamf's "Filtering with RSQL" (docs/jamf.md §8.3): ``==``, ``!=``, ``=lt=``/``<``, ``=le=``/``<=``,
``=gt=``/``>``, ``=ge=``/``>=``, ``=in=(a,b)``, ``=out=(a,b)``; ``;`` (and) binds tighter than
``,`` (or), parentheses group; arguments with whitespace are quoted with ``'`` or ``"``; string
comparisons are case-insensitive ("Jamf Pro is not case sensitive when doing string
comparisons"). ``*`` in an ``==``/``!=`` argument is a wildcard (standard RSQL; not confirmed for
Jamf, docs/jamf.md §8.9).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_OPERATORS = (
    "=out=",
    "=in=",
    "=lt=",
    "=le=",
    "=gt=",
    "=ge=",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
)
_CANONICAL = {"<": "=lt=", "<=": "=le=", ">": "=gt=", ">=": "=ge="}
_RESERVED = set("'\"();,=!<> \t")


class RsqlError(ValueError):
    """The filter is not valid RSQL; the message says where."""


@dataclass(frozen=True, slots=True)
class Comparison:
    selector: str
    operator: str
    arguments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Junction:
    operator: str  # "and" or "or"
    children: tuple[Node, ...]


Node = Comparison | Junction


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def fail(self, what: str) -> RsqlError:
        return RsqlError(f"{what} at position {self.at} of {self.text!r}")

    def skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t":
            self.at += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.at)

    def keyword(self, word: str) -> bool:
        self.skip()
        end = self.at + len(word)
        if self.text[self.at : end].lower() == word and (
            end < len(self.text) and self.text[end] in " \t("
        ):
            self.at = end
            return True
        return False

    def parse(self) -> Node:
        node = self.or_expression()
        self.skip()
        if self.at != len(self.text):
            raise self.fail("unexpected text")
        return node

    def or_expression(self) -> Node:
        children = [self.and_expression()]
        while self.peek(",") or self.keyword("or"):
            if self.peek(","):
                self.at += 1
            children.append(self.and_expression())
        return children[0] if len(children) == 1 else Junction("or", tuple(children))

    def and_expression(self) -> Node:
        children = [self.primary()]
        while self.peek(";") or self.keyword("and"):
            if self.peek(";"):
                self.at += 1
            children.append(self.primary())
        return children[0] if len(children) == 1 else Junction("and", tuple(children))

    def primary(self) -> Node:
        if self.peek("("):
            self.at += 1
            node = self.or_expression()
            if not self.peek(")"):
                raise self.fail("missing ')'")
            self.at += 1
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        self.skip()
        start = self.at
        while self.at < len(self.text) and (
            self.text[self.at].isalnum() or self.text[self.at] in "._-"
        ):
            self.at += 1
        selector = self.text[start : self.at]
        if not selector:
            raise self.fail("expected a field name")
        self.skip()
        operator = next((op for op in _OPERATORS if self.text.startswith(op, self.at)), None)
        if operator is None:
            raise self.fail(f"expected a comparison operator after {selector!r}")
        self.at += len(operator)
        operator = _CANONICAL.get(operator, operator)
        if operator in ("=in=", "=out="):
            if not self.peek("("):
                raise self.fail(f"{operator} needs a parenthesised list")
            self.at += 1
            arguments = [self.value()]
            while self.peek(","):
                self.at += 1
                arguments.append(self.value())
            if not self.peek(")"):
                raise self.fail("missing ')'")
            self.at += 1
            return Comparison(selector, operator, tuple(arguments))
        return Comparison(selector, operator, (self.value(),))

    def value(self) -> str:
        self.skip()
        if self.at >= len(self.text):
            raise self.fail("expected a value")
        quote = self.text[self.at]
        if quote in "'\"":
            self.at += 1
            out: list[str] = []
            while self.at < len(self.text) and self.text[self.at] != quote:
                if self.text[self.at] == "\\" and self.at + 1 < len(self.text):
                    self.at += 1
                out.append(self.text[self.at])
                self.at += 1
            if self.at >= len(self.text):
                raise self.fail("unterminated quoted value")
            self.at += 1
            return "".join(out)
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in _RESERVED:
            self.at += 1
        if start == self.at:
            raise self.fail("expected a value")
        return self.text[start : self.at]


def parse(text: str) -> Node:
    """The syntax tree of ``text``; :class:`RsqlError` if it is not RSQL."""
    return _Parser(text).parse()


def selectors(node: Node) -> list[str]:
    """Every field name the filter compares."""
    if isinstance(node, Comparison):
        return [node.selector]
    return [name for child in node.children for name in selectors(child)]


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _equal(value: Any, argument: str) -> bool:
    if value is None:
        return argument.lower() == "null"
    if isinstance(value, bool):
        return argument.lower() == ("true" if value else "false")
    text = str(value).casefold()
    wanted = argument.casefold()
    if "*" in wanted:
        return fnmatch.fnmatchcase(text, wanted.replace("[", "[[]"))
    return text == wanted


def _order(value: Any, argument: str) -> int | None:
    if value is None:
        return None
    left, right = _as_number(value), _as_number(argument)
    if left is not None and right is not None:
        return (left > right) - (left < right)
    a, b = str(value).casefold(), argument.casefold()
    return (a > b) - (a < b)


def _compare(values: Sequence[Any], comparison: Comparison) -> bool:
    operator, arguments = comparison.operator, comparison.arguments
    if operator == "==":
        return any(_equal(v, arguments[0]) for v in values)
    if operator == "!=":
        return not any(_equal(v, arguments[0]) for v in values)
    if operator == "=in=":
        return any(_equal(v, a) for v in values for a in arguments)
    if operator == "=out=":
        return not any(_equal(v, a) for v in values for a in arguments)
    for value in values:
        order = _order(value, arguments[0])
        if order is None:
            continue
        if (
            (operator == "=lt=" and order < 0)
            or (operator == "=le=" and order <= 0)
            or (operator == "=gt=" and order > 0)
            or (operator == "=ge=" and order >= 0)
        ):
            return True
    return False


def matches(node: Node, resolve: Callable[[str], Sequence[Any]]) -> bool:
    """Whether a record satisfies ``node``; ``resolve(field)`` gives the record's values."""
    if isinstance(node, Comparison):
        return _compare(resolve(node.selector) or [None], node)
    if node.operator == "and":
        return all(matches(child, resolve) for child in node.children)
    return any(matches(child, resolve) for child in node.children)
