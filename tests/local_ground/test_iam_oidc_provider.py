"""oidc_provider_from_templates: a template's AWS::IAM::OIDCProvider exists in IAM, as on AWS.

(moto's backends are process-wide: this file starts its own LocalAWS, apart from any ground.)"""

from __future__ import annotations

import boto3
import pytest

from local_ground.aws import LocalAWS
from local_ground.iam.oidc_provider import OidcProviderFromTemplates
from local_ground.moto_extensions import all_extensions

REGION = "us-east-1"
GITHUB = "https://token.actions.githubusercontent.com"

PROVIDER_TEMPLATE = f"""
Resources:
  Provider:
    Type: AWS::IAM::OIDCProvider
    Properties:
      Url: {GITHUB}
      ClientIdList: [sts.amazonaws.com]
Outputs:
  Arn:
    Value: !Ref Provider
"""


@pytest.mark.parametrize("with_extension", [True, False])
def test_a_templates_oidc_provider_exists_in_iam(with_extension: bool) -> None:
    extensions = [*all_extensions(), *([OidcProviderFromTemplates()] if with_extension else [])]
    with LocalAWS(extensions=extensions) as aws:
        session = boto3.session.Session("testing", "testing", region_name=REGION)
        cf = session.client("cloudformation", endpoint_url=aws.endpoint_url)
        iam = session.client("iam", endpoint_url=aws.endpoint_url)
        cf.create_stack(StackName="provider", TemplateBody=PROVIDER_TEMPLATE)
        providers = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
        if not with_extension:
            assert providers == []  # moto 5.2.5 skips the type: the gap this extension fills
            return
        assert providers == ["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"]
        outputs = cf.describe_stacks(StackName="provider")["Stacks"][0]["Outputs"]
        assert outputs == [{"OutputKey": "Arn", "OutputValue": providers[0]}]
        cf.delete_stack(StackName="provider")
        assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
