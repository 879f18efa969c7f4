"""Value expressions of profile metrics: `used / (used + free)`, `value * 10 ** (scale - 9)`.

A tiny, safe arithmetic language (numbers, names, + - * / **, parentheses), parsed with Python's
own parser and checked at load time, so a profile can compute a ratio from two columns without
any code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class ExpressionError(ValueError):
    pass


class Expression:
    """A compiled expression; `evaluate` returns None when a name has no value or the arithmetic
    fails (division by zero), so the metric is absent rather than wrong."""

    def __init__(self, text: str, names: set[str]) -> None:
        self.text = text
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"not an expression: {text!r} ({exc.msg})") from None
        self.names: set[str] = set()
        self._check(tree.body, names)
        self._tree = tree.body

    def _check(self, node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, names)
            self._check(node.right, names)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand, names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ExpressionError(f"unexpected {node.value!r} in {self.text!r}")
        elif isinstance(node, ast.Name):
            if node.id not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ExpressionError(f"unknown name {node.id!r} in {self.text!r} (known: {known})")
            self.names.add(node.id)
        else:
            raise ExpressionError(
                f"only numbers, names, + - * / ** and parentheses are allowed in {self.text!r}"
            )

    def evaluate(self, values: Mapping[str, float | None]) -> float | None:
        try:
            return self._eval(self._tree, values)
        except (ArithmeticError, _Missing):
            return None

    def _eval(self, node: ast.AST, values: Mapping[str, float | None]) -> float:
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](
                self._eval(node.left, values), self._eval(node.right, values)
            )
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, values))
        if isinstance(node, ast.Constant):
            return float(node.value)
        assert isinstance(node, ast.Name)
        value = values.get(node.id)
        if value is None:
            raise _Missing
        return value


class _Missing(Exception):
    pass
