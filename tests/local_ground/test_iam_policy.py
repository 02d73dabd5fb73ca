"""The policy evaluator against AWS's documented evaluation logic, one row per rule.

Sources: IAM User Guide, "Policy evaluation logic" (explicit deny wins, an allow is needed, implicit
deny otherwise), "IAM JSON policy elements: Condition operators" (operators, IfExists, negated
operators with a missing key, ForAllValues/ForAnyValue, ArnLike part by part), "Action / NotAction",
"Resource / NotResource" (wildcards; actions case-insensitive, ARNs case-sensitive).
"""

from __future__ import annotations

from typing import Any

import pytest

from local_ground.iam.policy import Decision, Request, UnsupportedCondition, evaluate

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-service-staging/0f1e2d3c"
ROLE = "arn:aws:iam::123456789012:role/app-ci-cfn-staging"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any = "cloudformation:CreateChangeSet", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "cloudformation:CreateChangeSet", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


CASES = [
    # (why, policies, request, decision)
    ("no statement: implicit deny", [policy()], Request("cloudformation:CreateChangeSet", STACK), "implicit deny"),
    ("matching allow", [policy(allow())], Request("cloudformation:CreateChangeSet", STACK), "allow"),
    (
        "explicit deny wins over an allow in another policy",
        [policy(allow()), policy(deny())],
        Request("cloudformation:CreateChangeSet", STACK),
        "explicit deny",
    ),
    (
        "action is case-insensitive",
        [policy(allow("CloudFormation:createchangeset"))],
        Request("cloudformation:CreateChangeSet", STACK),
        "allow",
    ),
    (
        "action wildcard",
        [policy(allow("cloudformation:*ChangeSet"))],
        Request("cloudformation:ExecuteChangeSet", STACK),
        "allow",
    ),
    ("action ? matches one character", [policy(allow("ecs:ListTask?"))], Request("ecs:ListTasks", "*"), "allow"),
    ("other service does not match", [policy(allow("ecs:*"))], Request("ecr:PutImage", "*"), "implicit deny"),
    (
        "NotAction allows what it does not name",
        [policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
        Request("ecs:ListTasks", "*"),
        "allow",
    ),
    (
        "NotAction excludes what it names",
        [policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
        Request("iam:PassRole", ROLE),
        "implicit deny",
    ),
    (
        "resource wildcard crosses / and :",
        [policy(allow(resource="arn:aws:cloudformation:*:123456789012:stack/app-service-staging/*"))],
        Request("cloudformation:CreateChangeSet", STACK),
        "allow",
    ),
    (
        "another stack's ARN does not match",
        [policy(allow(resource="arn:aws:cloudformation:us-east-1:123456789012:stack/app-service-production/*"))],
        Request("cloudformation:CreateChangeSet", STACK),
        "implicit deny",
    ),
    (
        "resource is case-sensitive",
        [policy(allow(resource=STACK.upper()))],
        Request("cloudformation:CreateChangeSet", STACK),
        "implicit deny",
    ),
    (
        "NotResource",
        [policy({"Effect": "Allow", "Action": "iam:PassRole", "NotResource": "arn:aws:iam::*:role/app-ci-*"})],
        Request("iam:PassRole", ROLE),
        "implicit deny",
    ),
    (
        "StringEquals holds",
        [
            policy(
                allow(
                    "iam:PassRole",
                    ROLE,
                    Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
                )
            )
        ],
        Request("iam:PassRole", ROLE, {"iam:PassedToService": ["cloudformation.amazonaws.com"]}),
        "allow",
    ),
    (
        "StringEquals fails on another value",
        [
            policy(
                allow(
                    "iam:PassRole",
                    ROLE,
                    Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
                )
            )
        ],
        Request("iam:PassRole", ROLE, {"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}),
        "implicit deny",
    ),
    (
        "a key missing from the context fails a positive operator",
        [
            policy(
                allow(
                    "iam:PassRole",
                    ROLE,
                    Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
                )
            )
        ],
        Request("iam:PassRole", ROLE),
        "implicit deny",
    ),
    (
        "...IfExists holds when the key is missing",
        [policy(allow("iam:PassRole", ROLE, Condition={"StringEqualsIfExists": {"iam:PassedToService": "x"}}))],
        Request("iam:PassRole", ROLE),
        "allow",
    ),
    (
        "...IfExists still compares a present key",
        [policy(allow("iam:PassRole", ROLE, Condition={"StringEqualsIfExists": {"iam:PassedToService": "x"}}))],
        Request("iam:PassRole", ROLE, {"iam:PassedToService": ["y"]}),
        "implicit deny",
    ),
    (
        "a negated operator holds when the key is missing",
        [policy(allow("ecs:ListTasks", Condition={"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}))],
        Request("ecs:ListTasks", "*"),
        "allow",
    ),
    (
        "condition key names are case-insensitive",
        [policy(allow("ecs:ListTasks", Condition={"StringEquals": {"AWS:requestedregion": "us-east-1"}}))],
        Request("ecs:ListTasks", "*", {"aws:RequestedRegion": ["us-east-1"]}),
        "allow",
    ),
    (
        "values of one key are ORed",
        [
            policy(
                allow(
                    "iam:PassRole",
                    ROLE,
                    Condition={"StringEquals": {"iam:PassedToService": ["a", "ecs-tasks.amazonaws.com"]}},
                )
            )
        ],
        Request("iam:PassRole", ROLE, {"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}),
        "allow",
    ),
    (
        "keys and operators are ANDed",
        [
            policy(
                allow(
                    "sts:AssumeRoleWithWebIdentity",
                    ROLE,
                    Condition={
                        "StringEquals": {"h:aud": "sts.amazonaws.com"},
                        "StringLike": {"h:sub": "repo:o/r:environment:*"},
                    },
                )
            )
        ],
        Request(
            "sts:AssumeRoleWithWebIdentity",
            ROLE,
            {"h:aud": ["sts.amazonaws.com"], "h:sub": ["repo:o/r:ref:refs/tags/v1"]},
        ),
        "implicit deny",
    ),
    (
        "StringLike wildcards",
        [policy(allow("s:A", Condition={"StringLike": {"h:sub": "repo:o/r:environment:*"}}))],
        Request("s:A", "*", {"h:sub": ["repo:o/r:environment:staging"]}),
        "allow",
    ),
    (
        "StringEquals takes * literally",
        [policy(allow("s:A", Condition={"StringEquals": {"h:sub": "repo:o/r:*"}}))],
        Request("s:A", "*", {"h:sub": ["repo:o/r:pull_request"]}),
        "implicit deny",
    ),
    (
        "ArnLike compares the six parts",
        [
            policy(
                allow(
                    "s:A", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:cloudformation:*:123456789012:stack/app-*"}}
                )
            )
        ],
        Request("s:A", "*", {"aws:SourceArn": [STACK]}),
        "allow",
    ),
    (
        "ArnEquals is not a substring match",
        [
            policy(
                allow(
                    "s:A",
                    Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:cloudformation:us-east-1:123456789012:stack"}},
                )
            )
        ],
        Request("s:A", "*", {"aws:SourceArn": [STACK]}),
        "implicit deny",
    ),
    (
        "Bool",
        [policy(deny("s:A", Condition={"Bool": {"aws:SecureTransport": "false"}}), allow("s:A"))],
        Request("s:A", "*", {"aws:SecureTransport": ["false"]}),
        "explicit deny",
    ),
    (
        "a deny whose condition fails does not apply",
        [policy(deny("s:A", Condition={"Bool": {"aws:SecureTransport": "false"}}), allow("s:A"))],
        Request("s:A", "*", {"aws:SecureTransport": ["true"]}),
        "allow",
    ),
    (
        "ForAllValues holds for an empty key, ForAnyValue does not",
        [policy(allow("s:A", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}))],
        Request("s:A", "*"),
        "allow",
    ),
    (
        "ForAnyValue needs one matching value",
        [policy(allow("s:A", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}))],
        Request("s:A", "*", {"aws:TagKeys": ["b", "a"]}),
        "allow",
    ),
    (
        "Null",
        [policy(allow("s:A", Condition={"Null": {"aws:TagKeys": "true"}}))],
        Request("s:A", "*", {"aws:TagKeys": ["a"]}),
        "implicit deny",
    ),
    (
        "trust policy: the Federated principal must match",
        [
            policy(
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/x"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                }
            )
        ],
        Request("sts:AssumeRoleWithWebIdentity", ROLE, principal={"Federated": ["arn:aws:iam::1:oidc-provider/y"]}),
        "implicit deny",
    ),
    (
        "trust policy: a Service principal is not a Federated one",
        [
            policy(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudformation.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            )
        ],
        Request("sts:AssumeRole", ROLE, principal={"Service": ["cloudformation.amazonaws.com"]}),
        "allow",
    ),
    (
        "policies as JSON text",
        ['{"Statement": {"Effect": "Allow", "Action": "s:A", "Resource": "*"}}'],
        Request("s:A", "*"),
        "allow",
    ),
]


@pytest.mark.parametrize(("why", "policies", "request_", "expected"), CASES, ids=[c[0] for c in CASES])
def test_evaluation(why: str, policies: list[Any], request_: Request, expected: str) -> None:
    assert evaluate(policies, request_) is Decision(expected), why


def test_an_unknown_operator_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedCondition):
        evaluate(
            [policy(allow("s:A", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))],
            Request("s:A", "*"),
        )


# --- permissions boundaries ("Permissions boundaries for IAM entities": the effective permissions are
# the intersection of the identity-based policies and the boundary; an explicit deny in either wins)

BOUNDED = "arn:aws:sts::123456789012:assumed-role/app-service-staging-TaskRole-X/task"


@pytest.mark.parametrize(
    ("why", "identity", "boundary", "expected", "message_ends"),
    [
        ("both allow", [allow("logs:PutLogEvents")], [allow("logs:*")], "allow", ""),
        (
            "the identity allows, the boundary does not",
            [allow("sqs:SendMessage")],
            [allow("logs:*")],
            "implicit deny by a permissions boundary",
            "because no permissions boundary allows the sqs:SendMessage action",
        ),
        (
            "the boundary allows, the identity does not: a boundary grants nothing",
            [allow("logs:*")],
            [allow("sqs:SendMessage")],
            "implicit deny",
            "because no identity-based policy allows the sqs:SendMessage action",
        ),
        (
            "an explicit deny in the boundary wins",
            [allow("sqs:SendMessage")],
            [allow("*"), deny("sqs:*")],
            "explicit deny in a permissions boundary",
            "with an explicit deny in a permissions boundary",
        ),
    ],
)
def test_a_permissions_boundary_limits_what_the_identity_allows(
    why: str, identity: list[dict[str, Any]], boundary: list[dict[str, Any]], expected: str, message_ends: str
) -> None:
    from local_ground.iam.errors import not_authorized
    from local_ground.iam.identity import Principal

    principal = Principal(BOUNDED, "123456789012", (policy(*identity),), boundary=(policy(*boundary),))
    action = "logs:PutLogEvents" if expected == "allow" else "sqs:SendMessage"
    decision = principal.decide(action, "*", {})
    assert decision.value == expected, why
    if message_ends:
        assert not_authorized(BOUNDED, action, "*", decision).endswith(message_ends)
