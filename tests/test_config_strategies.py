"""Rollout strategy settings: each bad value is one line naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError, ConfigProblems


@pytest.fixture()
def raw_settings(canary_raw_settings: dict[str, Any]) -> dict[str, Any]:
    """This module's settings: production as a canary with the model gate (tests/conftest.py)."""
    return canary_raw_settings


@pytest.fixture()
def settings(canary_settings: config.Settings) -> config.Settings:
    return canary_settings


def test_a_canary_production_with_a_gate(settings: config.Settings) -> None:
    production, staging = settings.environment("production"), settings.environment("staging")
    assert production.delivery.strategy == "canary" and production.shifts_traffic
    assert staging.delivery.strategy == "rolling" and not staging.shifts_traffic
    assert production.traffic.test_listener_cidrs == ()  # the VPC's CIDR only
    assert settings.gate is not None and settings.gate.require_version


@pytest.mark.parametrize("strategy", config.STRATEGIES)
def test_every_strategy_is_accepted(raw_settings: dict[str, Any], strategy: str) -> None:
    raw_settings["environments"]["staging"]["strategy"] = strategy
    assert config.parse(raw_settings).environment("staging").delivery.strategy == strategy


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("strategy", "recreate", "unknown strategy 'recreate'"),
        ("canary_percent", 0.0, "0.0 is not a percentage from 0.1 to 100"),
        ("canary_percent", 100.5, "100.5 is not a percentage"),
        ("canary_percent", 12.34, "12.34 is not a percentage from 0.1 to 100 in steps of 0.1"),
        ("linear_step_percent", 2.5, "2.5 is not a percentage from 3.0 to 100"),
        ("canary_bake_minutes", 1441, "1441 is outside 0..1440"),
        ("linear_step_bake_minutes", -1, "-1 is outside 0..1440"),
        ("bake_minutes", 2000, "2000 is outside 0..1440"),
        ("hook_timeout_minutes", 0, "0 is outside 1..20160"),
        ("test_listener_port", 443, "443 is not a free load balancer port"),
        ("test_listener_port", 70000, "70000 is not a free load balancer port"),
        ("test_listener_cidrs", ["10.0.0.1/16"], "'10.0.0.1/16' is not an IPv4 CIDR"),
        ("test_listener_cidrs", "10.0.0.0/16", "must be a list of strings"),
        ("canary_percent", "5", "must be a number"),
    ],
)
def test_bad_values_name_their_key(raw_settings: dict[str, Any], key: str, value: Any, message: str) -> None:
    raw_settings["environments"]["production"][key] = value
    with pytest.raises(ConfigError, match=message) as caught:
        config.parse(raw_settings)
    assert caught.value.key == f"environments.production.{key}"
    assert "\n" not in str(caught.value)


def test_bake_times_beyond_cloudformations_limit_are_refused(raw_settings: dict[str, Any]) -> None:
    production = raw_settings["environments"]["production"]
    production.update(strategy="linear", linear_step_percent=3.0, linear_step_bake_minutes=70, bake_minutes=0)
    # 100 / 3 -> 33 shifts, 32 of them followed by a bake: 32 x 70 min > 33 h.
    with pytest.raises(ConfigError, match="environments.production.linear_step_bake_minutes: the linear steps"):
        config.parse(raw_settings)
    production["linear_step_bake_minutes"] = 60  # 32 x 60 min = 32 h
    production["rollout_timeout"] = 34 * 3600  # a deployment baking for 33 h needs as long to complete
    assert config.parse(raw_settings).environment("production").traffic.linear_steps == 34


@pytest.mark.parametrize("strategy", ["linear", "rolling"])
@pytest.mark.parametrize("percent", [0, 5e-324, 0.0001])
def test_a_refused_step_percentage_is_the_one_problem(
    raw_settings: dict[str, Any], percent: float, strategy: str
) -> None:
    # 0 divided by zero and 5e-324 overflowed (tracebacks); 0.0001 added "bake times exceed 33 hours".
    raw_settings["environments"]["production"].update(strategy=strategy, linear_step_percent=percent)
    with pytest.raises(ConfigProblems) as caught:
        config.parse(raw_settings)
    assert caught.value.keys == ("environments.production.linear_step_percent",)
    assert f"{float(percent)} is not a percentage from 3.0 to 100 in steps of 0.1" in caught.value.one_line()


@pytest.mark.parametrize("key", ["bake_minutes", "canary_bake_minutes", "linear_step_bake_minutes"])
def test_a_refused_bake_is_not_also_a_bake_total_beyond_33_hours(raw_settings: dict[str, Any], key: str) -> None:
    raw_settings["environments"]["production"].update(strategy="linear", linear_step_percent=3.0)
    raw_settings["environments"]["production"][key] = 100_000
    with pytest.raises(ConfigProblems) as caught:
        config.parse(raw_settings)
    assert caught.value.keys == (f"environments.production.{key}",)


def test_linear_steps_end_at_100_percent() -> None:
    assert config.TrafficShift(linear_step_percent=25.0).linear_steps == 4
    assert config.TrafficShift(linear_step_percent=30.0).linear_steps == 4  # 30, 60, 90, 100
    assert config.TrafficShift(linear_step_percent=100.0).linear_steps == 1


def test_an_existing_vpc_needs_the_test_listener_cidrs(raw_settings: dict[str, Any]) -> None:
    production = raw_settings["environments"]["production"]
    del production["vpc_cidr"]
    production.update(
        vpc_id="vpc-0123456789abcdef0",
        public_subnet_ids=["subnet-01234567", "subnet-89abcdef"],
        private_subnet_ids=["subnet-11111111", "subnet-22222222"],
    )
    with pytest.raises(ConfigError, match="environments.production.test_listener_cidrs: an existing VPC's CIDR"):
        config.parse(raw_settings)
    production["test_listener_cidrs"] = ["10.60.0.0/16"]
    assert config.parse(raw_settings).environment("production").traffic.test_listener_cidrs == ("10.60.0.0/16",)
    production["strategy"] = "rolling"  # no test listener at all: nothing to open
    del production["test_listener_cidrs"]
    assert config.parse(raw_settings).environment("production").traffic.test_listener_cidrs == ()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("min_accuracy", 1.5, "gate.min_accuracy: 1.5 is not a share from 0 to 1"),
        ("min_agreement", -0.1, "gate.min_agreement: -0.1 is not a share"),
        ("max_p99_ms", 0, "gate.max_p99_ms: must be positive"),
        ("concurrency", 0, "gate.concurrency: 0 is outside 1..64"),
        ("request_timeout", 0, "gate.request_timeout: 0.0 is outside 0..300"),
        ("path", "predict", "gate.path: 'predict' does not start with /"),
        ("require_version", "yes", "gate.require_version: must be true or false"),
        ("golden", "x.jsonl", "gate.golden: unknown key"),
    ],
)
def test_bad_gate_values_name_their_key(
    raw_settings: dict[str, Any], project_root: Path, key: str, value: Any, message: str
) -> None:
    raw_settings["gate"][key] = value
    with pytest.raises(ConfigError, match=message):
        config.parse(raw_settings, root=project_root)


def test_the_gate_is_optional_and_needs_a_golden_set(raw_settings: dict[str, Any]) -> None:
    gate = raw_settings.pop("gate")
    assert config.parse(raw_settings).gate is None
    del gate["golden_set"]
    raw_settings["gate"] = gate
    with pytest.raises(ConfigError, match="gate.golden_set: missing"):
        config.parse(raw_settings)
