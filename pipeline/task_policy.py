"""What a task role statement from the settings may grant: refuse anything that lets the service escalate.

The model server's task role is the identity every request to the service can reach (a bug in the
server, a poisoned model file). Its statements come from pipeline.toml, so they are checked here
before any template holds them: an Allow may not cover every action, nor any action that changes
IAM, assumes another role, or runs code or commands as another identity (the documented privilege
escalation paths). Wildcards are judged by what they cover: `iam:Put*` covers iam:PutRolePolicy.
"""

from __future__ import annotations

import re
from functools import lru_cache

EFFECTS = ("Allow", "Deny")
ACTION = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+$")  # wildcards and any case, as IAM accepts
# arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (region and account may be empty, e.g. S3).
RESOURCE_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}|aws)?:.+$")

# Actions that let an identity give itself (or code it controls) more rights than its policy says.
ESCALATION_ACTIONS = (
    # IAM: new credentials, new or changed policies, roles handed to other services.
    "iam:PassRole",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreateUser",
    "iam:CreateRole",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:CreateServiceLinkedRole",
    # STS: another role's or a federated user's credentials.
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:GetFederationToken",
    # Code or commands that run as another identity without a PassRole check.
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "glue:UpdateDevEndpoint",
    "codebuild:StartBuild",
    "cloudformation:UpdateStack",
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "ssm:SendCommand",
    "ssm:StartSession",
    "ecs:ExecuteCommand",
    "ec2-instance-connect:SendSSHPublicKey",
)


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE)  # IAM action names match case-insensitively


def escalation_covered(action: str) -> str | None:
    """The first escalation action the pattern `action` covers, if any."""
    return next((a for a in ESCALATION_ACTIONS if _glob(action).fullmatch(a)), None)


def statement_problems(effect: str, actions: tuple[str, ...], resources: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(field, problem, hint) for everything wrong with one statement; [] when it may be granted."""
    found: list[tuple[str, str, str]] = []
    if effect not in EFFECTS:
        found.append(("effect", f"{effect!r} is not Allow or Deny", 'Use "Allow" (the default) or "Deny".'))
    if not actions:
        found.append(("actions", "is empty", 'List the actions, e.g. ["s3:GetObject"].'))
    if not resources:
        found.append(("resources", "is empty", 'List the ARNs, e.g. ["arn:aws:s3:::my-models/iris/*"].'))
    fix = "Grant only the actions the model server calls, e.g. s3:GetObject."
    for action in actions:
        if action in ("*", "*:*"):
            if effect == "Allow":
                found.append(("actions", f"{action!r} allows every action", fix))
            continue
        if not ACTION.match(action):
            found.append(("actions", f"{action!r} is not an IAM action", "Write service:Action, e.g. s3:GetObject."))
            continue
        covered = escalation_covered(action)
        if effect == "Allow" and covered:
            what = action if covered.lower() == action.lower() else f"{action} (it covers {covered})"
            found.append(
                (
                    "actions",
                    f"Allow of {what} would let the service escalate its own rights",
                    fix + " No IAM changes or role assumption.",
                )
            )
    for resource in resources:
        if resource != "*" and not RESOURCE_ARN.match(resource):
            found.append(
                ("resources", f"{resource!r} is not an ARN or *", "Use an ARN, e.g. arn:aws:s3:::my-models/iris/*.")
            )
    return found
