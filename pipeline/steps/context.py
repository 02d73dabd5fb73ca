"""What every chained step needs, built once by the CLI (or a test) and passed down.

It is also the one place that builds the step objects (Deployer, RolloutWatcher, SmokeTester, the
environment's rollout strategy) and the AWS clients, one set per region: an environment may live in
its own region (`delivery.region`); the registry and the shared stacks live in `app.region`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.clock import Clock, ScaledClock
from pipeline.config import Environment, Settings
from pipeline.errors import DeployError
from pipeline.templates import names

if TYPE_CHECKING:
    from pipeline.aws.clients import Clients
    from pipeline.github import GitHubRecorder
    from pipeline.steps.build import ImageBuilder
    from pipeline.steps.deploy import Deployer
    from pipeline.steps.roll import RolloutWatcher
    from pipeline.steps.smoke import SmokeTester
    from pipeline.steps.strategy import RolloutStrategy

Echo = Callable[[str], None]


@dataclass
class Context:
    settings: Settings
    clock: Clock
    echo: Echo
    github: GitHubRecorder | None = None
    builder: Callable[[], ImageBuilder] | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    poll: float = 5.0  # seconds between AWS polls (the local AWS scales them down)
    time_scale: float = 1.0  # how long an AWS second lasts here: a local ground's factor shrinks the AWS waits alike
    wait_if_busy: bool = False
    make_clients: Callable[[str], Clients] | None = None  # tests inject their own; default: boto3's configuration
    _clients: dict[str, Clients] = field(default_factory=dict, init=False, repr=False)

    # --- AWS clients, one set per region -------------------------------------------------------

    @property
    def clients(self) -> Clients:
        """The clients of `app.region`: ECR and the shared stacks (registry, ci-access)."""
        return self._region(self.settings.app.region)

    def clients_for(self, env: str) -> Clients:
        """The clients of an environment's region: its service stack, ECS service and load balancer."""
        return self._region(self.settings.region_of(self.environment(env)))

    def _region(self, region: str) -> Clients:
        if region not in self._clients:
            if self.make_clients is not None:
                self._clients[region] = self.make_clients(region)
            else:
                from pipeline.aws.clients import Clients

                # app.account: check_credentials refuses credentials of another account before any change.
                self._clients[region] = Clients(region, account=self.settings.app.account)
        return self._clients[region]

    # --- the step objects, built here only -----------------------------------------------------

    @property
    def aws_clock(self) -> Clock:
        """The clock of waits on AWS (stacks, rollouts): their timeouts are AWS durations, scaled as the ground
        scales every other AWS duration, so a rollout that cannot finish times out here as on AWS."""
        return self.clock if self.time_scale == 1.0 else ScaledClock(self.clock, self.time_scale)

    @property
    def aws_poll(self) -> float:
        """`poll` (wall-clock seconds) in the AWS seconds of `aws_clock`."""
        return self.poll / self.time_scale

    def deployer(self, env: str | None = None) -> Deployer:
        """Drives an environment's service stack, or (no env) the shared stacks."""
        from pipeline.steps.deploy import Deployer

        if env is None:
            return Deployer(
                self.clients.cloudformation,
                self.aws_clock,
                self.echo,
                wait_if_busy=self.wait_if_busy,
                poll=self.aws_poll,
            )
        timeout = float(self.environment(env).service.rollout_timeout) + 600  # the update waits for ECS too
        return Deployer(
            self.clients_for(env).cloudformation,
            self.aws_clock,
            self.echo,
            timeout=timeout,
            wait_if_busy=self.wait_if_busy,
            poll=self.aws_poll,
            environment=env,
            # CloudFormation acts as the environment's execution role, never as the deploy role.
            role_arn=names.execution_role_arn(self.settings, env),
        )

    def watcher(self, env: str) -> RolloutWatcher:
        from pipeline.steps.roll import RolloutWatcher

        clients = self.clients_for(env)
        timeout = float(self.environment(env).service.rollout_timeout)
        return RolloutWatcher(
            clients.ecs,
            clients.elbv2,
            self.aws_clock,
            self.echo,
            timeout=timeout,
            poll=self.aws_poll,
            environment=env,
        )

    def smoke_tester(self) -> SmokeTester:
        from pipeline.steps.smoke import SmokeTester

        return SmokeTester(self.clock, self.echo, poll=self.poll)

    def strategy(self, env: str) -> RolloutStrategy:
        """The environment's rollout strategy, chosen by `delivery.strategy`."""
        from pipeline.steps import strategy

        return strategy.create(self, self.environment(env))

    # --- names and templates ------------------------------------------------------------------

    @property
    def repository(self) -> str:
        return names.repository_name(self.settings)

    def environment(self, name: str) -> Environment:
        return self.settings.environment(name)

    def service_stack(self, env: str) -> str:
        return names.service_stack(self.settings, env)

    def committed_template(self, file_name: str) -> str:
        """Deploys use the reviewed, committed template, and refuse one that is stale."""
        from pipeline.synth import check_templates

        folder = self.settings.root / "cloudformation"
        stale = check_templates(self.settings, folder)
        if file_name in stale:
            raise DeployError(
                f"cloudformation/{file_name} is stale or missing",
                hint="Run `pipeline synth`, review and commit it, then deploy.",
            )
        return (folder / file_name).read_text(encoding="utf-8")
