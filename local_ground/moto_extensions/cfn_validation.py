"""CloudFormation refuses bad input at the door, as AWS does, before any change set or stack exists.

- cloudformation_validates_parameters: CreateStack / CreateChangeSet check the submitted parameters
  against the template's Parameters section: every parameter without a Default needs a value
  ("Parameters: [X] must have values"), a parameter the template does not declare is refused
  ("Parameters: [X] do not exist in the template"), and a value must satisfy AllowedPattern,
  AllowedValues, Min/MaxLength, Min/MaxValue and the Number type; a ConstraintDescription replaces
  the generic message. AWS: "Parameters" in the CloudFormation User Guide
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html:
  "AllowedPattern: A regular expression that represents the patterns to allow for String types. The
  pattern must match the entire parameter value provided"; ConstraintDescription "explains a
  constraint when the constraint is violated"). moto 5.2.5 takes any value, and a missing one
  fails only when the change set is executed.
- cloudformation_validates_stack_names: "A stack name can contain only alphanumeric characters
  (case-sensitive) and hyphens. It must start with an alphabetical character and can't be longer
  than 128 characters" (CreateStack / CreateChangeSet API reference, StackName). moto takes any name.
- no_change_update_is_a_failed_change_set: CreateChangeSet for an update that changes nothing
  succeeds; the change set ends FAILED with StatusReason "The submitted information didn't
  contain changes. Submit different information to create a change set." (CloudFormation User
  Guide, "Update CloudFormation stacks using change sets"). moto 5.2.5 raises "No updates are to
  be performed." at CreateChangeSet when the template text and parameters are the same (that is
  UpdateStack's answer, which stays as it is). "The same" is judged as CloudFormation does, on the
  parameters in effect: a parameter left out takes its Default ("Default: A value of the appropriate
  type for the template to use if no value is specified when a stack is created"), so leaving out
  one whose Default equals the stack's value changes nothing; moto compared the submitted lists.

All errors are ValidationError (HTTP 400), as CloudFormation answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse

from ._base import Extension, Patch
from .template_parsing import parsed

STACK_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]*")
STACK_NAME_MAX = 128


def parse_template(body: str | dict[str, Any] | None) -> dict[str, Any]:
    """A template body (JSON or YAML with short-form tags) as a dict, as moto parses it."""
    if isinstance(body, dict):
        return body
    if not body:
        return {}
    try:
        return dict(json.loads(body))
    except ValueError:
        loaded = parsed(body)  # YAML with CloudFormation's short-form tags, as moto reads it, once per text
        return loaded if isinstance(loaded, dict) else {}


# --- parameters ------------------------------------------------------------------------


def _constraint_error(name: str, declared: dict[str, Any], generic: str) -> ValidationError:
    description = declared.get("ConstraintDescription")
    if description:
        return ValidationError(message=f"Parameter {name} failed to satisfy constraint: {description}")
    return ValidationError(message=generic)


def _check_value(name: str, declared: dict[str, Any], value: str) -> None:
    kind = str(declared.get("Type", "String"))
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise ValidationError(message=f"Parameter '{name}' must be a number.") from None
        if "MinValue" in declared and number < float(declared["MinValue"]):
            raise _constraint_error(
                name, declared, f"Parameter '{name}' must be a number not less than {declared['MinValue']}"
            )
        if "MaxValue" in declared and number > float(declared["MaxValue"]):
            raise _constraint_error(
                name, declared, f"Parameter '{name}' must be a number not greater than {declared['MaxValue']}"
            )
    allowed = declared.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        raise _constraint_error(name, declared, f"Parameter '{name}' must be one of AllowedValues")
    if kind != "String":
        return
    pattern = declared.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise _constraint_error(name, declared, f"Parameter '{name}' must match pattern {pattern}")
    if "MinLength" in declared and len(value) < int(declared["MinLength"]):
        raise _constraint_error(
            name, declared, f"Parameter '{name}' must contain at least {declared['MinLength']} characters"
        )
    if "MaxLength" in declared and len(value) > int(declared["MaxLength"]):
        raise _constraint_error(
            name, declared, f"Parameter '{name}' must contain at most {declared['MaxLength']} characters"
        )


def validate_parameters(template: dict[str, Any], given: dict[str, Any]) -> None:
    """Raise CloudFormation's ValidationError for the first problem, in AWS's order."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise ValidationError(message=f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    missing = [name for name, spec in declared.items() if "Default" not in (spec or {}) and name not in given]
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    for name, spec in declared.items():
        value = given.get(name, (spec or {}).get("Default"))
        if value is not None:
            _check_value(name, spec or {}, str(value))


class CloudFormationValidatesParameters(Extension):
    name = "cloudformation_validates_parameters"

    def patches(self) -> Iterable[Patch]:
        create_stack = CloudFormationBackend.create_stack
        create_change_set = CloudFormationBackend.create_change_set

        def stack(backend: CloudFormationBackend, name: str, template: str, parameters: Any, *a: Any, **kw: Any) -> Any:
            validate_parameters(parse_template(template), dict(parameters or {}))
            return create_stack(backend, name, template, parameters, *a, **kw)

        def change_set(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
            template = kwargs["template"] if "template" in kwargs else args[2]
            parameters = kwargs["parameters"] if "parameters" in kwargs else args[3]
            validate_parameters(parse_template(template), dict(parameters or {}))
            return create_change_set(backend, *args, **kwargs)

        yield CloudFormationBackend, "create_stack", stack
        yield CloudFormationBackend, "create_change_set", change_set


# --- stack names -----------------------------------------------------------------------


def validate_stack_name(name: str) -> None:
    if len(name) > STACK_NAME_MAX:
        raise ValidationError(message=f"Stack name cannot exceed {STACK_NAME_MAX} characters")
    if STACK_NAME.fullmatch(name) is None:
        raise ValidationError(
            message=f"1 validation error detected: Value '{name}' at 'stackName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"
        )


class CloudFormationValidatesStackNames(Extension):
    name = "cloudformation_validates_stack_names"

    def patches(self) -> Iterable[Patch]:
        create_stack = CloudFormationBackend.create_stack
        create_change_set = CloudFormationBackend.create_change_set

        def stack(backend: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Any:
            validate_stack_name(name)
            return create_stack(backend, name, *args, **kwargs)

        def change_set(backend: CloudFormationBackend, stack_name: str, *args: Any, **kwargs: Any) -> Any:
            kind = kwargs.get("change_set_type") or (args[4] if len(args) > 4 else "CREATE")
            if kind == "CREATE":  # an UPDATE may name the stack by its ARN
                validate_stack_name(stack_name)
            return create_change_set(backend, stack_name, *args, **kwargs)

        yield CloudFormationBackend, "create_stack", stack
        yield CloudFormationBackend, "create_change_set", change_set


# --- no-change updates -----------------------------------------------------------------


class NoChangeUpdateIsAFailedChangeSet(Extension):
    name = "no_change_update_is_a_failed_change_set"

    def patches(self) -> Iterable[Patch]:
        respond = CloudFormationResponse.create_change_set

        def create_change_set(response: CloudFormationResponse) -> Any:
            # Only for this request: moto's backend then marks the change set FAILED with AWS's reason.
            response._validate_different_update = lambda *_args: None  # type: ignore[method-assign]
            return respond(response)

        yield CloudFormationResponse, "create_change_set", create_change_set
        yield Stack, "has_parameters", _has_parameters_in_effect


def _has_parameters_in_effect(stack: Stack, other_parameters: dict[str, Any]) -> bool:
    declared = (stack.template_dict or {}).get("Parameters") or {}
    defaults = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    return {**defaults, **stack.parameters} == {**defaults, **other_parameters}
