"""Refusals in AWS's shapes: the Query protocol's XML ErrorResponse, the JSON protocols' __type body."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape  # nosec B406 # escapes text we write; no XML is parsed

from werkzeug.exceptions import HTTPException

from .policy import Decision


class Refusal(HTTPException):
    """Raised in front of moto's handler; moto's call_action turns it into the HTTP response."""

    def __init__(self, status: int, code: str, message: str, *, json_protocol: bool) -> None:
        super().__init__()
        self.code = status
        self.error_code = code
        self.message = message
        if json_protocol:
            self.description = json.dumps({"__type": code, "message": message})
        else:
            self.description = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                "</Error><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>"
            )

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self.description or ""


def not_authorized(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied message, saying why as AWS does since 2021."""
    why = {
        Decision.EXPLICIT_DENY: "with an explicit deny in an identity-based policy",
        Decision.BOUNDARY_EXPLICIT_DENY: "with an explicit deny in a permissions boundary",
        Decision.BOUNDARY_IMPLICIT_DENY: f"because no permissions boundary allows the {action} action",
    }.get(decision, f"because no identity-based policy allows the {action} action")
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"


def access_denied(message: str, *, json_protocol: bool) -> Refusal:
    if json_protocol:
        return Refusal(400, "AccessDeniedException", message, json_protocol=True)
    return Refusal(403, "AccessDenied", message, json_protocol=False)
