from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError


def test_project_settings_load(settings: config.Settings) -> None:
    assert settings.app.name == "iris-classifier"
    assert settings.environment_names == ("staging", "production")
    staging = settings.environment("staging")
    assert staging.service.desired_count == 1 and staging.service.max_count == 3
    assert not staging.https
    production = settings.environment("production")
    assert production.https and production.service.desired_count == 2


def test_settings_are_frozen(settings: config.Settings) -> None:
    with pytest.raises(AttributeError):
        settings.app.name = "other"  # type: ignore[misc]


def test_derived_rollout_knobs(settings: config.Settings) -> None:
    s = settings.environment("production").service
    assert s.deregistration_delay == s.request_timeout + s.drain_margin
    assert s.idle_timeout > s.request_timeout
    assert s.stop_timeout <= 120
    assert s.modeled_rollout_seconds <= 90


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


BAD_VALUES = [
    ("app.name", "Iris_Classifier", "app.name"),
    ("app.region", "mars-1", "app.region"),
    ("app.account", "12345", "app.account"),
    ("app.account", 123456789012, "app.account"),
    ("app.github_repository", "no-slash", "app.github_repository"),
    ("app.colour", "blue", "app.colour"),
    ("service.cpu", 300, "service.cpu"),
    ("service.memory", 8192, "service.memory"),
    ("service.container_port", 70000, "service.container_port"),
    ("service.container_port", "8080", "service.container_port"),
    ("service.min_count", 7, "service.min_count"),
    ("service.desired_count", 9, "service.desired_count"),
    ("service.health_check_path", "health", "service.health_check_path"),
    ("service.health_check_timeout", 10, "service.health_check_timeout"),
    ("service.log_retention_days", 31, "service.log_retention_days"),
    ("service.healthy_threshold", True, "service.healthy_threshold"),
    ("image.builder", "kaniko", "image.builder"),
    ("smoke.request", "{not json", "smoke.request"),
    ("environments.production.certificate_arn", "arn:aws:acm:oops", "environments.production.certificate_arn"),
    ("environments.staging.max_count", 0, "environments.staging.min_count"),
    ("environments.staging.vpc_cidr", "10.0.0.0/8", "environments.staging.vpc_cidr"),
    ("environments.staging.vpc_id", "vpc-0123456789abcdef0", "environments.staging.vpc_cidr"),
    ("environments.staging.replicas", 2, "environments.staging.replicas"),
    ("environments.staging.variables", {"BAD-NAME": "x"}, "environments.staging.variables.BAD-NAME"),
    ("environments.staging.variables", {"LIMIT": 3}, "environments.staging.variables.LIMIT"),
]


@pytest.mark.parametrize(("dotted", "value", "key"), BAD_VALUES, ids=[f"{d}={v!r}" for d, v, _ in BAD_VALUES])
def test_bad_values_name_the_key(raw_settings: dict[str, Any], dotted: str, value: Any, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse(_set(raw_settings, dotted, value))
    assert caught.value.key == key
    line = caught.value.one_line()
    assert line.startswith(key) and "\n" not in line
    assert caught.value.hint, "every settings error says how to fix it"
    assert caught.value.exit_code == 2


def test_memory_hint_lists_what_fargate_offers(raw_settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="With cpu 512 use 1024 to 4096 MiB"):
        config.parse(_set(raw_settings, "service.memory", 512))


def test_existing_network_needs_two_subnets_each(raw_settings: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_settings)
    del raw["environments"]["staging"]["vpc_cidr"]
    raw["environments"]["staging"].update(
        vpc_id="vpc-0123456789abcdef0", public_subnet_ids=["subnet-01234567"], private_subnet_ids=[]
    )
    with pytest.raises(ConfigError) as caught:
        config.parse(raw)
    assert caught.value.key == "environments.staging.public_subnet_ids"
    raw["environments"]["staging"].update(
        public_subnet_ids=["subnet-01234567", "subnet-89abcdef"],
        private_subnet_ids=["subnet-11111111", "subnet-22222222"],
    )
    env = config.parse(raw).environment("staging")
    assert not env.network.creates_vpc


def test_unknown_environment_lists_the_known_ones(settings: config.Settings) -> None:
    with pytest.raises(ConfigError, match="staging, production"):
        settings.environment("qa")


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")
    broken = tmp_path / "pipeline.toml"
    broken.write_text("[app\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(broken)
