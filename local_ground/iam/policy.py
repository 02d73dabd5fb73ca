"""IAM policy evaluation, as AWS documents it for one account's identity-based and trust policies.

    decision = evaluate(policies, Request("cloudformation:CreateChangeSet", arn, context))

- An explicit Deny in any statement wins; otherwise an Allow is needed; otherwise implicit deny.
- Action / NotAction match case-insensitively with `*` and `?`; Resource / NotResource case-sensitively,
  and `*` crosses `:` and `/` (as in AWS ARNs matching).
- Principal / NotPrincipal (trust policies): "*", {"AWS": ...}, {"Service": ...}, {"Federated": ...}.
- Conditions: every operator in a block must hold, every key in an operator, any value of a key.
  A key missing from the request context fails the operator, except `...IfExists` (holds), the
  negated operators (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike, NumericNotEquals: hold)
  and `Null`. `ForAnyValue:` / `ForAllValues:` qualify multivalued keys.
A role's permissions boundary is a second set of policies that must also allow (identity.Principal).
Not modelled (the pipeline's policies use none): SCPs, session policies,
resource-based policies other than trust policies, policy variables, Date and IpAddress operators.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Context = Mapping[str, Sequence[str]]


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"
    # The identity's policies allow it, its permissions boundary does not (identity.Principal.decide).
    BOUNDARY_EXPLICIT_DENY = "explicit deny in a permissions boundary"
    BOUNDARY_IMPLICIT_DENY = "implicit deny by a permissions boundary"


@dataclass(frozen=True)
class Request:
    action: str  # service:Action
    resource: str  # an ARN, or "*" where the action has no resource
    context: Context = field(default_factory=dict)  # condition keys -> values
    principal: Mapping[str, Sequence[str]] | None = None  # for trust policies: {"Federated": [arn]} ...


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def as_document(policy: Any) -> dict[str, Any]:
    """Policies arrive as dicts or JSON text (moto keeps both)."""
    if isinstance(policy, str):
        loaded: dict[str, Any] = json.loads(policy)
        return loaded
    return dict(policy)


def statements(policy: Any) -> list[dict[str, Any]]:
    return [dict(s) for s in _list(as_document(policy).get("Statement"))]


# --- conditions -----------------------------------------------------------------------------------


def _string_equals(p: str, v: str) -> bool:
    return p == v


def _string_equals_ic(p: str, v: str) -> bool:
    return p.lower() == v.lower()


def _string_like(p: str, v: str) -> bool:
    return like(p, v)


def _arn_like(p: str, v: str) -> bool:
    """ARNs compare part by part (six colon-separated parts); the last part may contain colons."""
    pp, vp = p.split(":", 5), v.split(":", 5)
    return len(pp) == len(vp) == 6 and all(like(a, b) for a, b in zip(pp, vp, strict=True))


def _numeric(op: str) -> Any:
    def compare(p: str, v: str) -> bool:
        try:
            a, b = float(v), float(p)
        except ValueError:
            return False
        return {"Equals": a == b, "LessThan": a < b, "LessThanEquals": a <= b, "GreaterThan": a > b}.get(
            op, a >= b if op == "GreaterThanEquals" else False
        )

    return compare


def _bool(p: str, v: str) -> bool:
    return str(p).lower() == str(v).lower()


# operator -> (value matcher, negated)
OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ic, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ic, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric("Equals"), False),
    "NumericNotEquals": (_numeric("Equals"), True),
    "NumericLessThan": (_numeric("LessThan"), False),
    "NumericLessThanEquals": (_numeric("LessThanEquals"), False),
    "NumericGreaterThan": (_numeric("GreaterThan"), False),
    "NumericGreaterThanEquals": (_numeric("GreaterThanEquals"), False),
}


class UnsupportedCondition(ValueError):
    """An operator this evaluator does not know: refusing beats guessing (never more lenient than AWS)."""


def _find_key(context: Context, key: str) -> Sequence[str] | None:
    for k, values in context.items():
        if k.lower() == key.lower():  # condition key names are case-insensitive
            return values
    return None


def condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    present = _find_key(context, key)
    if name == "Null":
        return (present is None) == _bool(str(_list(wanted)[0]), "true")
    if name not in OPERATORS:
        raise UnsupportedCondition(operator)
    match, negated = OPERATORS[name]
    if present is None:
        return if_exists or negated or qualifier == "ForAllValues"
    wanted_values = [str(w) for w in _list(wanted)]
    request_values = [str(v) for v in present]

    def any_matches(value: str) -> bool:
        return any(match(w, value) for w in wanted_values)

    if qualifier == "ForAllValues":
        result = all(any_matches(v) for v in request_values)
        return not result if negated else result
    hit = any(any_matches(v) for v in request_values)  # single-valued keys, and ForAnyValue
    return not hit if negated else hit


def conditions_hold(block: Mapping[str, Mapping[str, Any]] | None, context: Context) -> bool:
    for operator, keys in (block or {}).items():
        for key, wanted in keys.items():
            if not condition_holds(operator, key, wanted, context):
                return False
    return True


# --- statements -----------------------------------------------------------------------------------


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(like(p, action, ignore_case=True) for p in _list(statement["NotAction"]))
    return any(like(p, action, ignore_case=True) for p in _list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not any(like(p, resource) for p in _list(statement["NotResource"]))
    if "Resource" not in statement:
        return True  # trust policies name no resource: the role itself
    return any(like(p, resource) for p in _list(statement["Resource"]))


def _principal_in(spec: Any, principal: Mapping[str, Sequence[str]]) -> bool:
    if spec == "*":
        return True
    for kind, patterns in dict(spec).items():
        for who in principal.get(kind, ()):
            if any(p == "*" or like(p, who) for p in _list(patterns)):
                return True
    return False


def _principal_matches(statement: Mapping[str, Any], principal: Mapping[str, Sequence[str]] | None) -> bool:
    if principal is None:
        return True  # identity-based policies: the principal is the policy's owner
    if "NotPrincipal" in statement:
        return not _principal_in(statement["NotPrincipal"], principal)
    return "Principal" in statement and _principal_in(statement["Principal"], principal)


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and _principal_matches(statement, request.principal)
        and conditions_hold(statement.get("Condition"), request.context)
    )


def evaluate(policies: Iterable[Any], request: Request) -> Decision:
    allowed = False
    for policy in policies:
        for statement in statements(policy):
            if not statement_applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
