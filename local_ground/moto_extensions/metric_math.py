"""CloudWatch metric math for alarms: the subset the service template's alarms use.

An alarm on a metric math expression (``Metrics`` with one ``ReturnData`` expression, e.g. the 5xx
rate ``IF(requests >= 50, 100 * FILL(errors, 0) / requests, 0)``) is evaluated per period from its
``MetricStat`` queries, as CloudWatch does (CloudWatch User Guide, "Using metric math": IF, FILL,
arithmetic and comparison operators; a period where an operand has no data yields no datapoint unless
FILL supplies one). Expressions are parsed with Python's ``ast`` and only these node kinds are
accepted; anything else is an unsupported expression, never executed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

Value = float | None
_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class UnsupportedExpression(ValueError):
    pass


def evaluate(expression: str, values: Mapping[str, Value]) -> Value:
    """The expression's value for one period; None where CloudWatch would have no datapoint."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise UnsupportedExpression(f"cannot parse {expression!r}: {err}") from None
    return _value(tree.body, values)


def _value(node: ast.AST, values: Mapping[str, Value]) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise UnsupportedExpression(f"unknown metric id {node.id}")
        return values[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand, values)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _value(node.left, values), _value(node.right, values)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div) and right == 0:
            return None  # CloudWatch drops a datapoint divided by zero
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _value(node.left, values), _value(node.comparators[0], values)
        if left is None or right is None:
            return None
        return 1.0 if _COMPARE[type(node.ops[0])](left, right) else 0.0
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call(node.func.id, node.args, values)
    raise UnsupportedExpression(f"unsupported metric math: {ast.unparse(node)}")


def _call(name: str, args: list[ast.expr], values: Mapping[str, Value]) -> Value:
    if name == "IF" and len(args) == 3:
        condition = _value(args[0], values)
        if condition is None:
            return None
        return _value(args[1] if condition != 0 else args[2], values)
    if name == "FILL" and len(args) == 2:
        series = _value(args[0], values)
        return series if series is not None else _value(args[1], values)
    raise UnsupportedExpression(f"unsupported metric math function {name}/{len(args)}")


def query_values(queries: list[Any], per_query: Callable[[Any], Value]) -> tuple[str, dict[str, Value]]:
    """The returned expression and each MetricStat query's value (per_query computes one)."""
    values = {q.id: per_query(q) for q in queries if q.metric_stat is not None}
    returned = [q for q in queries if q.expression and str(q.return_data).lower() != "false"]
    if len(returned) != 1:
        raise UnsupportedExpression("a metric math alarm returns exactly one expression")
    return str(returned[0].expression), values
