"""A project that uses every extension point: task-role statements, secrets from both stores with a KMS
key, ARM64, ECS Exec in staging, and variables per environment merged over [service.variables]."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iris/db-password-AbC123"
SECRET_KEY = SECRET + ":password::"  # one JSON key of the same secret
PARAMETER = "arn:aws:ssm:us-east-1:123456789012:parameter/iris/api-token"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0b7a8c3e-4f1d-4b8e-9a65-2f6c1d3e5a70"
MODEL_PREFIX = "arn:aws:s3:::acme-models/iris/*"


def extension_raw(project_root: Path) -> dict[str, Any]:
    raw: dict[str, Any] = tomllib.loads((project_root / "pipeline.toml").read_text())
    raw = copy.deepcopy(raw)
    raw["image"]["architecture"] = "ARM64"
    service = raw["service"]
    service["secrets_kms_key"] = KMS_KEY
    service["variables"] = {"LOG_LEVEL": "info", "MODEL_BUCKET": "acme-models"}
    service["secrets"] = {"DB_PASSWORD": SECRET_KEY, "API_TOKEN": PARAMETER}
    service["task_policy"] = [
        {"actions": ["s3:GetObject"], "resources": [MODEL_PREFIX]},
        {"effect": "Deny", "actions": ["s3:DeleteObject"], "resources": [MODEL_PREFIX]},
    ]
    staging = raw["environments"]["staging"]
    staging["execute_command"] = True
    staging["variables"]["LOG_LEVEL"] = "debug"
    staging["secrets"] = {"DB_URL": SECRET}
    staging["task_policy"] = [{"actions": ["s3:ListBucket"], "resources": ["arn:aws:s3:::acme-models"]}]
    return raw
