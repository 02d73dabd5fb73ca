"""oidc_provider_from_templates: `AWS::IAM::OIDCProvider` in a template creates the provider, as on AWS.

moto 5.2.5's CloudFormation skips the type ("No Moto CloudFormation support"), so a stack that
creates GitHub's provider leaves none in IAM, and a second provider for the same URL is not refused.
Here the resource goes through moto's IAM backend (create_open_id_connect_provider, which refuses a
duplicate URL with EntityAlreadyExists) and `Ref` gives its ARN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation import parsing
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from local_ground.moto_extensions._base import Extension, Patch

TYPE = "AWS::IAM::OIDCProvider"


class OidcProviderResource:
    """What moto's CloudFormation needs of a resource class (no CloudFormationModel subclass: that
    would register the type in moto for good, installed or not)."""

    def __init__(self, arn: str, account_id: str, region_name: str) -> None:
        self.arn = arn
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, name: str) -> str:
        if name == "Arn":
            return self.arn
        raise KeyError(name)

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
    ) -> OidcProviderResource:
        props = cloudformation_json.get("Properties", {})
        backend = iam_backends[account_id][get_partition(region_name)]
        provider = backend.create_open_id_connect_provider(
            url=props["Url"],
            thumbprint_list=list(props.get("ThumbprintList") or []),
            client_id_list=list(props.get("ClientIdList") or []),
            tags=list(props.get("Tags") or []),
        )
        return cls(provider.arn, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: OidcProviderResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> OidcProviderResource:
        props = cloudformation_json.get("Properties", {})
        provider = iam_backends[account_id][get_partition(region_name)].open_id_providers[original_resource.arn]
        provider.client_id_list = list(props.get("ClientIdList") or [])
        provider.thumbprint_list = list(props.get("ThumbprintList") or [])
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        iam_backends[account_id][get_partition(region_name)].delete_open_id_connect_provider(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        iam_backends[account_id][get_partition(region_name)].delete_open_id_connect_provider(self.arn)


class OidcProviderFromTemplates(Extension):
    name = "oidc_provider_from_templates"

    def patches(self) -> Iterable[Patch]:
        original = parsing.resource_class_from_type

        def resource_class_from_type(resource_type: str) -> Any:
            return OidcProviderResource if resource_type == TYPE else original(resource_type)

        yield parsing, "resource_class_from_type", resource_class_from_type
