"""Rollout strategies: how a new task definition goes live once the stack update has started it.

An environment names its strategy in pipeline.toml (`delivery.strategy`); the release flow asks
`Context.strategy(env)` for it and calls, in order:

    watch(rollout)     the `roll` phase: follow the deployment until the new tasks serve (or take test
                       traffic, for a strategy that shifts traffic in steps) or it fails
    (smoke test through the service URL)
    promote(rollout)   the checks passed: shift production traffic / continue a paused deployment
    stop(rollout)      the watch or the smoke test failed while the deployment was in flight: stop it or
                       shift its traffic back, before the previous digest is deployed again
(Ctrl-C or SIGTERM: the release engine itself stops the ECS deployment still rolling out, with
StopServiceDeployment and a rollback, whatever the strategy; see Engine.stop_rollout. A traffic-shifting
strategy follows the update itself (`follows_update`) and stops its own deployment the same way.)

A new strategy is a subclass registered under its name with `@register("name")`, plus its name in
`pipeline.config.STRATEGIES` (settings accept only names the pipeline knows); the release flow is
not edited.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pipeline.config import Environment
from pipeline.errors import ConfigError
from pipeline.report import Phase
from pipeline.steps.roll import RolloutResult

if TYPE_CHECKING:
    from pipeline.steps.context import Context


@dataclass(frozen=True)
class Rollout:
    """One ECS deployment a stack update started: what a strategy watches and acts on."""

    environment: str
    cluster: str
    service: str
    task_definition: str  # the new one
    target_group_arn: str | None
    url: str

    @classmethod
    def from_outputs(cls, environment: str, outputs: dict[str, str]) -> Rollout:
        return cls(
            environment,
            outputs["ClusterName"],
            outputs["ServiceName"],
            outputs["TaskDefinitionArn"],
            outputs.get("TargetGroupArn"),
            outputs.get("ServiceUrl", ""),
        )


class RolloutStrategy(ABC):
    """Made once per environment and release by its factory, from the Context and the environment."""

    # True for a strategy that acts while the stack update waits (traffic shifting answers the service
    # deployment's lifecycle hooks, and CloudFormation waits for that deployment): the release flow then
    # calls begin(outputs, version) before the update and during_update() between its polls.
    follows_update: ClassVar[bool] = False

    def __init__(self, ctx: Context, env: Environment) -> None:
        self.ctx = ctx
        self.env = env
        self.decided: Callable[[str], None] = ctx.echo  # each decision and its figures (the engine records them)
        self.back_seconds: float | None = None  # from a rollback decision to production on the old version
        self.stages: list[Phase] = []  # the service deployment's lifecycle stages as seen (traffic shifting)

    def begin(self, outputs: dict[str, str], version: str) -> None:
        """Before the stack update starts (follows_update only): the stack's outputs as they are."""
        return None

    def during_update(self) -> None:
        """Between two polls of the running stack update (follows_update only)."""
        return None

    def verdict(self) -> str:
        """Why the strategy rolled the deployment back ("" when it did not), named in the release's error."""
        return ""

    def interrupted(self) -> str:
        """Ctrl-C while the update runs: stop what can be stopped; returns what was done ("" for nothing)."""
        return ""

    @abstractmethod
    def watch(self, rollout: Rollout) -> RolloutResult:
        """Follow the deployment after the stack update; COMPLETED means the new tasks serve."""

    def promote(self, rollout: Rollout) -> str:
        """After the smoke test passed: shift (the rest of) production traffic; returns what was done."""
        return ""

    def stop(self, rollout: Rollout) -> str:
        """Stop or roll back the in-flight deployment; returns what was done ("" for nothing)."""
        return ""


StrategyFactory = Callable[["Context", Environment], RolloutStrategy]
REGISTRY: dict[str, StrategyFactory] = {}


def register(name: str) -> Callable[[type[RolloutStrategy]], type[RolloutStrategy]]:
    """Class decorator: make a strategy choosable as `delivery.strategy = "name"`."""

    def add(cls: type[RolloutStrategy]) -> type[RolloutStrategy]:
        if name in REGISTRY:
            raise ValueError(f"a rollout strategy named {name!r} is already registered")
        REGISTRY[name] = cls
        return cls

    return add


def create(ctx: Context, env: Environment) -> RolloutStrategy:
    name = env.delivery.strategy
    factory = REGISTRY.get(name)
    if factory is None:
        raise ConfigError(
            f"environments.{env.name}.strategy",
            f"unknown rollout strategy {name!r}",
            hint=f"Use one of: {', '.join(sorted(REGISTRY))}.",
        )
    return factory(ctx, env)


@register("rolling")
class RollingStrategy(RolloutStrategy):
    """ECS's rolling update: new tasks replace old ones as they pass the target group's health check;
    the deployment circuit breaker rolls a failing deployment back by itself, so `stop` has nothing to do."""

    def watch(self, rollout: Rollout) -> RolloutResult:
        return self.ctx.watcher(self.env.name).wait(
            rollout.cluster, rollout.service, rollout.task_definition, rollout.target_group_arn
        )


# blue_green, canary, linear: ECS shifts traffic, the engine answers the lifecycle hooks.
from pipeline.steps import traffic as _traffic  # noqa: E402,F401  (registers them)

# The strategies this module ships, which pipeline.config.STRATEGIES must list (a test checks it).
BUILT_IN: tuple[str, ...] = tuple(REGISTRY)
