"""identity_enforcement: every request to the local AWS is authorized as AWS would, by who signed it.

moto 5.2.5's own access control cannot serve (roles created by its CloudFormation make calls answer
HTTP 500, every resource is evaluated as "*", conditions are ignored, web identity tokens and trust
policies go unchecked), so this extension replaces its authorization step in front of every handler
(``BaseResponse._authenticate_and_authorize_normal_action``, moto's one hook for it):

- the signer: the operator's keys are the account's administrator; any other key must be an IAM
  user's or an STS session's, with a valid SigV4 signature (moto's own check), else
  InvalidClientTokenId / SignatureDoesNotMatch; an unsigned call is MissingAuthenticationToken;
- the decision: the identity's policies (policy.py) for the action, the real ARN (requests.py) and
  the condition keys; AccessDenied in the protocol's shape otherwise, naming action and resource;
- iam:PassRole for a RoleARN handed to CloudFormation (which must also exist and trust it);
- sts:AssumeRole against the role's trust policy; sts:AssumeRoleWithWebIdentity by web_identity.py;
- CloudFormation acting as the change set's RoleARN (else the stack's, else the caller) with the
  handlers' permissions (cloudformation.py);
- an ECS task's execution role pulling its image and writing its log stream before the task starts
  (execution_role.py; the real tasks of local_ground.tasks run the check while enforcement is on).
sts:GetCallerIdentity is always allowed, as on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend
from moto.core.responses import BaseResponse
from moto.iam.access_control import AssumedRoleAccessKey, IAMRequest
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

from local_ground.moto_extensions._base import Extension, Patch

from . import cloudformation as cfn_acting
from . import identity, requests, web_identity
from .errors import Refusal, access_denied, not_authorized
from .policy import Decision, Request, evaluate

PUBLIC = {("sts", "AssumeRoleWithWebIdentity")}  # SAML is not verified here, so not accepted unsigned
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}

_request = threading.local()  # the principal of the request this thread serves


class IdentityEnforcement(Extension):
    name = "identity_enforcement"

    def __init__(self, operator_keys: Iterable[str] = ("testing",), issuer_hosts: dict[str, str] | None = None) -> None:
        super().__init__()
        self.operator_keys = set(operator_keys)
        self.issuer_hosts: dict[str, str] = dict(issuer_hosts or {})  # issuer host -> local base URL
        self.enabled = True  # tests may switch enforcement off and on around a call
        self._task_check: Any = None

    def install(self) -> None:
        from local_ground.tasks.runtime import add_start_check

        from .execution_role import start_check

        super().install()
        self._task_check = start_check(lambda: self.enabled)
        add_start_check(self._task_check)

    def uninstall(self) -> None:
        from local_ground.tasks.runtime import remove_start_check

        if self._task_check is not None:
            remove_start_check(self._task_check)
            self._task_check = None
        super().uninstall()

    # --- the HTTP side ------------------------------------------------------------------------

    def authorize(self, response: Any) -> None:
        _request.principal = None
        if not self.enabled:
            return
        json_protocol = "X-Amz-Target" in response.headers or "x-amz-target" in response.headers
        action_name = response._get_action()
        scope = requests.credential_scope(response.headers, response.querystring)
        if scope is None:
            service = getattr(response, "service_name", "") or ""
            if (requests.IAM_PREFIX.get(service, service), action_name) in PUBLIC:  # nosec B113 # a dict, not an HTTP call
                return
            raise Refusal(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
                json_protocol=json_protocol,
            )
        if (scope.service, action_name) in PUBLIC:
            return
        account, region = response.current_account, scope.region
        principal = self._signer(response, scope, account, region)
        _request.principal = principal
        action = f"{scope.service}:{action_name}"
        if action in ALWAYS_ALLOWED:
            return
        resource = requests.resource_of(response, scope.service, action_name, account, region)
        context = {"aws:RequestedRegion": [region], "aws:PrincipalAccount": [principal.account]}
        keys = {**context, **requests.condition_keys(response, scope.service, action_name, account, region)}
        decision = principal.decide(action, resource, keys)
        if decision is not Decision.ALLOW:
            raise access_denied(not_authorized(principal.arn, action, resource, decision), json_protocol=json_protocol)
        passed = requests.role_arn_passed(response, scope.service, action_name)
        if passed:
            self._check_pass_role(principal, passed, context, region)
        if action == "sts:AssumeRole":
            self._check_trust(principal, resource, region)

    def _signer(self, response: Any, scope: requests.Scope, account: str, region: str) -> identity.Principal:
        if scope.access_key in self.operator_keys:
            return identity.admin(account, region)
        path = response.raw_path + (f"?{response.uri.split('?', 1)[1]}" if "?" in response.uri else "")
        # Unknown keys raise InvalidClientTokenId, a bad signature SignatureDoesNotMatch (moto's shapes).
        signed = IAMRequest(
            account_id=account,
            method=response.method,
            path=path,
            data=response.data,
            body=response.raw_body,
            headers=response.headers,
            action=response._get_action(),
        )
        signed.check_signature()
        key = signed._access_key
        if isinstance(key, AssumedRoleAccessKey):
            role_arn = f"arn:{get_partition(region)}:iam::{account}:role/{key._owner_role_name}"
            principal = identity.role_principal(role_arn, key._session_name, region)
            if principal is None:  # the role was deleted: its sessions can do nothing
                return identity.Principal(key.arn, account, ())
            return principal
        return identity.user_principal(account, region, key._owner_user_name)

    def _check_pass_role(
        self, principal: identity.Principal, role_arn: str, context: dict[str, list[str]], region: str
    ) -> None:
        pass_context = {**context, "iam:PassedToService": ["cloudformation.amazonaws.com"]}
        decision = principal.decide("iam:PassRole", role_arn, pass_context)
        if decision is not Decision.ALLOW:
            raise access_denied(not_authorized(principal.arn, "iam:PassRole", role_arn, decision), json_protocol=False)
        role = identity.role_principal(role_arn, cfn_acting.SESSION, region)
        trusted = role is not None and self._trusts(role_arn, region, {"Service": ["cloudformation.amazonaws.com"]})
        if not trusted:
            raise Refusal(
                400, "ValidationError", f"Role {role_arn} is invalid or cannot be assumed", json_protocol=False
            )

    @staticmethod
    def _trusts(role_arn: str, region: str, who: dict[str, list[str]], action: str = "sts:AssumeRole") -> bool:
        from moto.iam.models import iam_backends

        try:
            role = iam_backends[role_arn.split(":")[4]][get_partition(region)].get_role_by_arn(role_arn)
        except Exception:  # noqa: BLE001 - moto's NotFoundException
            return False
        request = Request(action, role_arn, {}, principal=who)
        return evaluate([role.assume_role_policy_document], request) is Decision.ALLOW

    def _check_trust(self, principal: identity.Principal, role_arn: str, region: str) -> None:
        if principal.admin:
            who = {
                "AWS": [principal.arn, f"arn:{get_partition(region)}:iam::{principal.account}:root", principal.account]
            }
        else:
            who = {"AWS": [principal.arn]}
        if not self._trusts(role_arn, region, who):
            message = f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            raise access_denied(message, json_protocol=False)

    # --- the patches --------------------------------------------------------------------------

    def patches(self) -> Iterable[Patch]:
        extension = self
        assume_web = TokenResponse.assume_role_with_web_identity
        execute = CloudFormationBackend.execute_change_set
        delete_stack = CloudFormationBackend.delete_stack
        create_stack = CloudFormationBackend.create_stack
        generate = parsing.parse_resource_and_generate_name
        delete_resource_of = parsing.ResourceMap._delete_resource

        def authorize(response: Any, resource: str = "*") -> None:
            extension.authorize(response)

        def assume_role_with_web_identity(response: TokenResponse) -> Any:
            if extension.enabled:
                web_identity.verify(
                    str(response._get_param("WebIdentityToken") or ""),
                    str(response._get_param("RoleArn") or ""),
                    response.region,
                    web_identity.http_fetcher(extension.issuer_hosts),
                )
            return assume_web(response)

        def acting_for(backend: CloudFormationBackend, role_arn: str | None) -> identity.Principal | None:
            caller = getattr(_request, "principal", None)
            if not extension.enabled:
                return None
            if role_arn:
                return identity.role_principal(role_arn, cfn_acting.SESSION, backend.region_name) or identity.Principal(
                    role_arn, backend.account_id, ()
                )
            return caller

        def execute_change_set(
            backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
        ) -> Any:
            change_set = backend.describe_change_set(change_set_name)
            if change_set is None:  # moto answers the missing change set
                return execute(backend, change_set_name, stack_name)
            stack = backend.stacks[change_set.stack_id]
            principal = acting_for(backend, change_set.role_arn or stack.role_arn)
            with cfn_acting.acting_as(principal):
                try:
                    return execute(backend, change_set_name, stack_name)
                except cfn_acting.HandlerDenied as denied:
                    if change_set.change_set_type != "CREATE":
                        raise
                    cfn_acting.fail_create(stack, change_set, denied, _deleter(stack))
                    return None

        def delete(backend: CloudFormationBackend, name_or_stack_id: str) -> Any:
            stack = next(
                (s for s in backend.stacks.values() if name_or_stack_id in (s.name, s.stack_id)),
                None,
            )
            with cfn_acting.acting_as(acting_for(backend, stack.role_arn if stack else None)):
                return delete_stack(backend, name_or_stack_id)

        def create(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
            with cfn_acting.acting_as(acting_for(backend, kwargs.get("role_arn"))):
                return create_stack(backend, *args, **kwargs)

        def parse_resource_and_generate_name(logical_id: str, resource_json: dict[str, Any], resources_map: Any) -> Any:
            parsed: Any = generate(logical_id, resource_json, resources_map)  # None for types moto lacks
            if cfn_acting.acting_principal() is not None:
                # A type moto does not model (parsed is None) is still checked: AWS's handler would run.
                _, cleaned, name = parsed or (None, resource_json, "*")
                operation = "update" if logical_id in resources_map._parsed_resources else "create"
                try:
                    cfn_acting.check_resource(
                        operation,
                        logical_id,
                        str(cleaned["Type"]),
                        str(name),
                        dict(cleaned.get("Properties") or {}) if parsed else {},
                        resources_map._region_name,
                    )
                except cfn_acting.HandlerDenied as denied:
                    _remember_failure(logical_id, denied)
                    raise
            return parsed

        def delete_resource(resource_map: parsing.ResourceMap, resource: Any, resource_json: dict[str, Any]) -> Any:
            if cfn_acting.acting_principal() is not None:
                logical = str(getattr(resource, "logical_resource_id", "") or "")
                name = str(getattr(resource, "physical_resource_id", "") or logical)
                cfn_acting.check_resource("delete", logical, resource_json["Type"], name, {}, resource_map._region_name)
            return delete_resource_of(resource_map, resource, resource_json)

        yield BaseResponse, "_authenticate_and_authorize_normal_action", authorize
        yield TokenResponse, "assume_role_with_web_identity", assume_role_with_web_identity
        yield CloudFormationBackend, "execute_change_set", execute_change_set
        yield CloudFormationBackend, "delete_stack", delete
        yield CloudFormationBackend, "create_stack", create
        yield parsing, "parse_resource_and_generate_name", parse_resource_and_generate_name
        yield parsing.ResourceMap, "_delete_resource", delete_resource


def _deleter(stack: Any) -> Any:
    def delete(resource: Any, resource_json: dict[str, Any], logical_id: str) -> None:
        stack.resource_map._delete_resource(resource, resource_json)

    return delete


def _remember_failure(logical_id: str, error: Exception) -> None:
    """failed_stack_update_rolls_back names the failed resource from its thread-local; a create inside
    an update (a new resource) never reaches its wrapper, so tell it here."""
    from local_ground.moto_extensions import stack_rollback

    stack_rollback._failure.last = (logical_id, error)
