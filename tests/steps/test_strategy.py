"""Rollout strategies are objects chosen by settings; the Context builds the step objects and one set
of AWS clients per region."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline import config
from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.steps import strategy
from pipeline.steps.context import Context


def with_delivery(settings: Settings, env: str, **delivery: object) -> Settings:
    changed = tuple(
        replace(e, delivery=replace(e.delivery, **delivery)) if e.name == env else e for e in settings.environments
    )
    return replace(settings, environments=changed)


def context(settings: Settings) -> Context:
    return Context(settings, FakeClock(), lambda _line: None)


def test_the_settings_accept_every_built_in_strategy() -> None:
    assert set(strategy.BUILT_IN) == set(config.STRATEGIES)
    assert set(strategy.BUILT_IN) <= set(strategy.REGISTRY)


@pytest.mark.parametrize("name", config.TRAFFIC_STRATEGIES)
def test_a_traffic_strategy_follows_the_stack_update(settings: Settings, name: str) -> None:
    from pipeline.steps.traffic import TrafficShiftStrategy

    made = context(with_delivery(settings, "production", strategy=name)).strategy("production")
    assert isinstance(made, TrafficShiftStrategy) and made.follows_update
    assert not strategy.RollingStrategy.follows_update


def test_the_test_listener_is_the_service_hosts_own_port(settings: Settings) -> None:
    from pipeline.steps.traffic import test_listener_url

    staging = settings.environment("staging")
    assert test_listener_url("http://abc.elb.amazonaws.com", staging) == "http://abc.elb.amazonaws.com:9000"
    assert test_listener_url("http://127.3.4.5:41234", staging) == "http://127.3.4.5:9000"


def test_an_environment_gets_the_strategy_its_settings_name(settings: Settings) -> None:
    made = context(settings).strategy("staging")
    assert isinstance(made, strategy.RollingStrategy)
    assert made.env is settings.environment("staging")


def test_an_unregistered_strategy_is_a_config_error(settings: Settings) -> None:
    ctx = context(with_delivery(settings, "production", strategy="spiral"))
    with pytest.raises(ConfigError) as failed:
        ctx.strategy("production")
    assert str(failed.value) == (
        "environments.production.strategy: unknown rollout strategy 'spiral'. "
        "Use one of: blue_green, canary, linear, rolling."
    )


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'rolling' is already registered"):
        strategy.register("rolling")(strategy.RollingStrategy)


def test_clients_per_region_one_set_each(settings: Settings) -> None:
    ctx = context(with_delivery(settings, "production", region="eu-west-1"))
    assert ctx.clients_for("staging") is ctx.clients, "staging lives in app.region"
    assert ctx.clients_for("production") is ctx.clients_for("production")
    assert (ctx.clients.region, ctx.clients_for("production").region) == ("us-east-1", "eu-west-1")
    assert ctx.clients_for("production").ecs.meta.region_name == "eu-west-1"


def test_the_step_objects_are_built_from_the_environment(settings: Settings) -> None:
    elsewhere = with_delivery(settings, "production", region="eu-west-1")
    built = Context(elsewhere, FakeClock(), lambda _line: None, poll=0.5, wait_if_busy=True)
    deployer = built.deployer("production")
    assert (deployer.cf.meta.region_name, deployer.poll, deployer.wait_if_busy) == ("eu-west-1", 0.5, True)
    assert deployer.environment == "production", "named in the Ctrl-C hint"
    assert deployer.timeout == settings.environment("production").service.rollout_timeout + 600
    assert built.deployer().cf.meta.region_name == "us-east-1", "the shared stacks live in app.region"
    watcher = built.watcher("production")
    assert (watcher.ecs.meta.region_name, watcher.elbv2.meta.region_name) == ("eu-west-1", "eu-west-1")
    assert watcher.environment == "production"
    assert watcher.timeout == settings.environment("production").service.rollout_timeout
    assert built.smoke_tester().poll == 0.5


def test_on_a_scaled_ground_the_aws_waits_and_their_timeouts_shrink_by_its_factor(settings: Settings) -> None:
    """rollout_timeout and the stack waits are AWS durations: a ground that scales AWS by 0.02 scales them too."""
    wall = FakeClock()
    built = Context(settings, wall, lambda _line: None, poll=0.1, time_scale=0.02)
    for waiter in (built.deployer("production"), built.watcher("production"), built.deployer()):
        started = waiter.clock.now()
        waiter.clock.sleep(waiter.poll)
        assert wall.slept[-1] == pytest.approx(0.1)  # a poll still lasts `poll` wall-clock seconds
        assert waiter.clock.now() - started == pytest.approx(5.0)  # ...which is 5 s of AWS time here
    rollout_timeout = settings.environment("production").service.rollout_timeout
    assert built.watcher("production").timeout == rollout_timeout  # in AWS seconds, as the messages say
    assert built.deployer("production").timeout == rollout_timeout + 600  # the stack wait, on the same AWS clock
    unscaled = Context(settings, wall, lambda _line: None, poll=0.1)
    assert unscaled.watcher("production").clock is wall and unscaled.deployer().clock is wall
