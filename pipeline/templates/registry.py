"""The `registry` stack: one ECR repository shared by every environment."""

from __future__ import annotations

import json

from troposphere import Export, GetAtt, Output, Ref, Sub, Template
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository

from pipeline.config import Settings
from pipeline.templates import names

# Keep enough releases to roll back far; untagged layers from failed pushes go after a day.
KEEP_RELEASES = 50


def lifecycle_policy() -> str:
    rules = [
        {
            "rulePriority": 1,
            "description": "Expire untagged images after a day",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"Keep the last {KEEP_RELEASES} releases",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_RELEASES},
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


def build_registry(settings: Settings) -> Template:
    t = Template(Description=f"{settings.app.name}: ECR repository for the model server images")
    repo = t.add_resource(
        Repository(
            "Repository",
            RepositoryName=names.repository_name(settings),
            ImageTagMutability="IMMUTABLE",  # a version is pushed once; deploys pin digests anyway
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS"),
            LifecyclePolicy=LifecyclePolicy(LifecyclePolicyText=lifecycle_policy()),
        )
    )
    t.add_output(
        [
            Output("RepositoryName", Value=Ref(repo), Export=Export(names.export(settings, "RepositoryName"))),
            Output("RepositoryArn", Value=GetAtt(repo, "Arn"), Export=Export(names.export(settings, "RepositoryArn"))),
            Output(
                "RepositoryUri",
                Value=GetAtt(repo, "RepositoryUri"),
                Export=Export(names.export(settings, "RepositoryUri")),
            ),
            Output("RegistryHost", Value=Sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}")),
        ]
    )
    return t
