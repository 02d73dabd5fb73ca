"""release and rollback: the chained steps, timed phase by phase.

release VERSION --env ENV: build, push, deploy, roll, smoke, record. When deploy, roll or smoke fails,
the service goes back to what ran before (by digest), the failure is recorded, and the error says why.
rollback --env ENV VERSION|--previous: no build; the version's digest comes from ECR, then deploy,
roll, smoke, record. Both are "deploy this digest": CloudFormation is the one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.aws import cloudformation as cfn
from pipeline.aws import ecr as ecr_api
from pipeline.aws import ecs as ecs_api
from pipeline.errors import (
    DeployError,
    InputError,
    Interrupted,
    PipelineError,
    ReleaseFailed,
    RolloutError,
    SmokeTestError,
)
from pipeline.report import Phase, ReleaseOutcome, ReleaseReport
from pipeline.steps.context import Context
from pipeline.steps.deploy import refuse_busy
from pipeline.steps.interrupt import read_now
from pipeline.steps.push import PushedImage, digest_of, find_release, push_image
from pipeline.steps.roll import RolloutResult, deployments_line, explain_rolled_back, require_completed
from pipeline.steps.smoke import SmokeResult
from pipeline.steps.strategy import Rollout
from pipeline.steps.version import parse_version
from pipeline.templates import names


@dataclass(frozen=True)
class Running:
    """What a service stack runs now, from its parameters."""

    version: str
    image_uri: str

    @property
    def digest(self) -> str:
        return digest_of(self.image_uri)


def running_version(ctx: Context, env: str) -> Running | None:
    stack = cfn.describe_stack(ctx.clients_for(env).cloudformation, ctx.service_stack(env))
    if (
        stack is None
        or stack.status in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE")
        or "ImageUri" not in stack.parameters
    ):
        return None
    return Running(stack.parameters.get("Version", ""), stack.parameters["ImageUri"])


class Engine:
    """The steps against one environment, each a timed phase: release and rollback chain them, and the
    single-step commands (`pipeline deploy | roll | smoke`) call them one at a time."""

    def __init__(self, ctx: Context, environment: str, report: ReleaseReport | None = None) -> None:
        self.ctx = ctx
        self.env = ctx.environment(environment)
        self.report = report or ReleaseReport("step", self.env.name, "")
        self.stack_name = ctx.service_stack(environment)
        self.clients = ctx.clients_for(environment)
        self.strategy = ctx.strategy(environment)
        self.echo = ctx.echo
        self.current_phase = ""
        self.deploy_started = False  # Ctrl-C before it changed nothing in AWS
        self.in_flight: Rollout | None = None  # the deployment the last stack update started
        self.github_deployment: int | None = None  # the GitHub deployment the decisions are posted to
        self.strategy.decided = self.decided

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.ctx.clock.now()
        self.current_phase = name
        self.echo(f"==> {name}")
        ok = False
        try:
            yield
            ok = True
        except KeyboardInterrupt:
            raise self.interrupted() from None
        finally:
            seconds = self.ctx.clock.now() - start
            self.report.phases.append(Phase(name, start, seconds, ok))
            self.echo(f"<== {name} {'done' if ok else 'FAILED'} in {seconds:.1f}s")

    def refuse_if_busy(self) -> None:
        """Before anything changes: a stack mid-operation is refused (or waited for, with --wait)."""
        if not self.ctx.wait_if_busy:
            refuse_busy(cfn.describe_stack(self.clients.cloudformation, self.stack_name))

    # --- the steps --------------------------------------------------------------------------------

    def deploy(self, image: PushedImage) -> Rollout:
        """Update the service stack to run `image` (by digest); returns the ECS deployment it started."""
        body = self.ctx.committed_template(names.template_file("service", self.env.name))
        self.deploy_started = True
        follow = None
        if self.strategy.follows_update:  # it answers the deployment's hooks while the update waits for it
            before = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
            if before is not None and "ClusterName" in before.outputs:
                self.strategy.begin(before.outputs, image.version)
                follow = self.strategy.during_update
        with self.phase("deploy"):
            try:
                result = self.ctx.deployer(self.env.name).deploy(
                    self.stack_name,
                    body,
                    {"ImageUri": image.image_uri, "Version": image.version},
                    while_waiting=follow,
                )
            except DeployError as err:
                verdict = self.strategy.verdict()
                self.report.traffic_back_seconds = self.strategy.back_seconds
                if verdict:
                    raise RolloutError(verdict, hint="Production traffic went back to the previous version.") from None
                raise DeployError(f"{err.message}{self._ecs_cause()}", hint=err.hint) from None
            except Interrupted as stop:
                said = self.strategy.interrupted()
                self.report.traffic_back_seconds = self.strategy.back_seconds
                if said:
                    self.report.decisions.append(said)
                    raise Interrupted(f"{said}; {stop.message}", hint=stop.hint) from None
                raise
            self.report.changes = [c.line() for c in result.changes]
        stack = result.stack or cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        assert stack is not None  # nosec B101 # the deploy just created or found the stack
        self.report.url = stack.outputs.get("ServiceUrl", "")
        self.in_flight = Rollout.from_outputs(self.env.name, stack.outputs)
        return self.in_flight

    def rollout(self) -> Rollout:
        """The deployment the service stack last started, from its outputs; refused when never deployed."""
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        if stack is None or "ServiceUrl" not in stack.outputs:
            raise PipelineError(
                f"{self.env.name} is not deployed", hint=f"Run `pipeline release VERSION --env {self.env.name}`."
            )
        self.report.url = stack.outputs["ServiceUrl"]
        self.in_flight = Rollout.from_outputs(self.env.name, stack.outputs)
        return self.in_flight

    def roll(self, rollout: Rollout) -> RolloutResult:
        """Wait for the ECS deployment as the environment's strategy does it; raises unless it completed."""
        with self.phase("roll"):
            result = self.strategy.watch(rollout)
            require_completed(result, rollout.service)
            return result

    def smoke(self, rollout: Rollout) -> SmokeResult:
        with self.phase("smoke"):
            return self.ctx.smoke_tester().run(rollout.url, self.env.service.health_check_path, self.ctx.settings.smoke)

    def deploy_image(self, image: PushedImage) -> None:
        """deploy + roll + smoke for one digest, then let the strategy promote it; raises on the first failure."""
        rollout = self.deploy(image)
        self.roll(rollout)
        self.smoke(rollout)
        promoted = self.strategy.promote(rollout)
        if promoted:
            self.echo(promoted)

    def decided(self, line: str) -> None:
        """A strategy's decision and its figures: on the terminal, in the report, on the GitHub deployment."""
        self.echo(f"  {line}")
        self.report.decisions.append(line)
        if self.github_deployment is not None and self.ctx.github is not None:
            self.ctx.github.progress(self.github_deployment, line)

    def stop_in_flight(self) -> None:
        """After a failure: let the strategy stop or roll back the deployment still in flight."""
        if self.in_flight is not None:
            done = self.strategy.stop(self.in_flight)
            if done:
                self.echo(done)

    def interrupted(self) -> Interrupted:
        """Ctrl-C in a phase whose wait does not report it itself: say what the stack and service do now."""

        def now() -> str:
            stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
            if stack is None:
                return f"{self.stack_name} does not exist"
            line = f"{self.stack_name} is {stack.status}"
            if "ClusterName" in stack.outputs:
                state = ecs_api.describe_service(
                    self.clients.ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"]
                )
                line += f"; service: {deployments_line(state)}"
            return line

        during = f" during {self.current_phase}" if self.current_phase else ""
        after = "CloudFormation and ECS carry on by themselves" if self.deploy_started else "no deployment was started"
        return Interrupted(
            f"interrupted{during} of {self.report.kind} {self.report.version} to {self.env.name} "
            f"({read_now(now, f'the status of {self.stack_name}')}); {after}",
            hint=f"Run `pipeline status {self.env.name}` to see where it stands.",
        )

    def _ecs_cause(self) -> str:
        """When CloudFormation rolled back because ECS failed the deployment, say what ECS saw."""
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        if stack is None or "ClusterName" not in stack.outputs:
            return ""
        cause = explain_rolled_back(self.clients.ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"])
        return f" (ECS: {cause})" if cause else ""


def release(ctx: Context, environment: str, tag: str, ref: str | None = None) -> ReleaseReport:
    version = parse_version(tag)
    env = ctx.environment(environment)  # unknown environments are refused before any work
    ctx.clients.check_credentials()
    report = ReleaseReport("release", env.name, version)
    engine = Engine(ctx, env.name, report)
    engine.refuse_if_busy()
    previous = running_version(ctx, env.name)
    ecr = ctx.clients.ecr

    existing = ecr_api.image_by_tag(ecr, ctx.repository, version)
    if existing is not None and env.delivery.build:
        # An environment that builds never rebuilds: a version already in ECR was released before.
        raise InputError(
            f"version {version} is already in ECR ({existing.digest}); tags are immutable",
            hint=f"Tag a new version, or run `pipeline rollback --env {env.name} {version}` to deploy it again.",
        )
    if existing is not None:
        ctx.echo(f"{version} is already in ECR as {existing.digest}: promoting it to {env.name} without a build")
        image = find_release(ecr, ctx.repository, version)
    elif not env.delivery.build:
        builders = ", ".join(e.name for e in ctx.settings.environments if e.delivery.build)
        raise InputError(
            f"version {version} is not in ECR and {env.name} does not build (build = false)",
            hint=f"Release it to {builders} first; {env.name} promotes the digest verified there.",
        )
    else:
        image = _build_and_push(ctx, engine, version)  # a failed build is not a deployment: nothing recorded
    report.digest = image.digest
    _ship(ctx, engine, image, previous, ref or f"v{version}", done=f"{version} is live", failed=f"{version} failed")
    if env.delivery.github_release and ctx.github is not None:
        with engine.phase("record"):
            body = release_notes(report)
            url = ctx.github.create_release(f"v{version}", f"v{version}", body)
            ctx.echo(f"GitHub release: {url}")
    return report


def rollback(ctx: Context, environment: str, target: str | None, previous: bool = False) -> ReleaseReport:
    env = ctx.environment(environment)
    if previous == (target is not None):
        raise InputError("give either a VERSION or --previous", hint="e.g. `pipeline rollback --env staging 1.0.0`.")
    ctx.clients.check_credentials()
    current = running_version(ctx, env.name)
    version = parse_version(target) if target else _previous_version(ctx, env.name, current)
    image = find_release(ctx.clients.ecr, ctx.repository, version)  # refused here when missing: nothing changed
    report = ReleaseReport("rollback", env.name, version, digest=image.digest)
    engine = Engine(ctx, env.name, report)
    engine.refuse_if_busy()
    _ship(
        ctx,
        engine,
        image,
        current,
        f"v{version}",
        done=f"rolled back to {version}",
        failed=f"rollback to {version} failed",
    )
    return report


def _ship(
    ctx: Context, engine: Engine, image: PushedImage, restore_to: Running | None, ref: str, *, done: str, failed: str
) -> None:
    """Record a GitHub deployment, then deploy + roll + smoke; on failure put `restore_to` back and say why.
    Ctrl-C at any point marks the deployment `error` and ends with Interrupted (exit 130)."""
    report = engine.report
    deployment_id = _record_start(ctx, engine.env.name, image.version, ref, image.digest)
    engine.github_deployment = deployment_id
    try:
        try:
            engine.deploy_image(image)
        except (DeployError, RolloutError, SmokeTestError) as err:
            report.cause = err.message
            engine.stop_in_flight()
            _restore(ctx, engine, restore_to, report)
            _record_finish(ctx, deployment_id, "failure", report, f"{failed}: {err.message}")
            raise ReleaseFailed(report) from None
        except Interrupted:
            raise
        except PipelineError as err:
            report.cause = err.message
            _record_finish(ctx, deployment_id, "failure", report, f"{failed}: {err.message}")
            raise
    except (Interrupted, KeyboardInterrupt) as stop:
        interrupted = stop if isinstance(stop, Interrupted) else engine.interrupted()
        report.cause = interrupted.message
        report.outcome = ReleaseOutcome.INTERRUPTED
        interrupted.report = report
        what = f"{report.kind} of {report.version} interrupted (Ctrl-C) during {engine.current_phase or 'start'}"
        _record_finish(ctx, deployment_id, "error", report, f"{what}; AWS carries on")
        raise interrupted from None
    report.outcome = ReleaseOutcome.RELEASED
    _record_finish(ctx, deployment_id, "success", report, done)


def _build_and_push(ctx: Context, engine: Engine, version: str) -> PushedImage:
    from pipeline.steps.build import build_image, pick_builder
    from pipeline.steps.image_check import check_image

    builder = ctx.builder() if ctx.builder else pick_builder(ctx.settings)
    with engine.phase("build"):
        local = build_image(ctx.settings, version, builder, ctx.echo, ctx.build_args)
    with engine.phase("check"):
        check_image(ctx.settings, local, ctx.echo, runtime="docker" if builder.name == "buildx" else "buildah")
    with engine.phase("push"):
        return push_image(ctx.clients.ecr, builder, local, ctx.repository, version, ctx.echo)


def _restore(ctx: Context, engine: Engine, previous: Running | None, report: ReleaseReport) -> None:
    """Put back what ran before, unless CloudFormation already did."""
    now = running_version(ctx, engine.env.name)
    if previous is None:
        report.outcome = ReleaseOutcome.FAILED
        ctx.echo(f"nothing ran in {engine.env.name} before; nothing to roll back to")
        return
    if now is not None and now.image_uri == previous.image_uri:
        ctx.echo(f"CloudFormation rolled {engine.stack_name} back: {previous.version} ({previous.digest}) is in place")
    else:
        ctx.echo(f"rolling {engine.env.name} back to {previous.version} ({previous.digest})")
        image = PushedImage.from_uri(previous.version, previous.image_uri)
        try:
            with engine.phase("rollback"):
                engine.deploy_image(image)
        except Interrupted:
            raise
        except PipelineError as err:
            report.outcome = ReleaseOutcome.FAILED
            report.cause += f"; the automatic rollback failed too: {err.message}"
            return
    report.outcome = ReleaseOutcome.ROLLED_BACK
    report.restored_version = previous.version


def _previous_version(ctx: Context, env: str, current: Running | None) -> str:
    if ctx.github is not None:
        record = ctx.github.previous_successful(env)
        if record is not None:
            ctx.echo(f"previous successful deployment on GitHub: {record.version} ({record.digest})")
            return record.version
        raise InputError(
            f"GitHub has no successful deployment of {env} before the current one",
            hint="Name the version to roll back to.",
        )
    from pipeline.steps.history import stack_history

    for entry in stack_history(ctx, env):
        if current is None or entry.digest != current.digest:
            ctx.echo(f"previous version from the stack's task definitions: {entry.version} ({entry.digest})")
            return entry.version
    raise InputError(f"{env} has no earlier version to roll back to", hint="Name the version to roll back to.")


def _record_start(ctx: Context, env: str, version: str, ref: str, digest: str) -> int | None:
    if ctx.github is None:
        return None
    production = ctx.environment(env).delivery.github_release
    return ctx.github.start_deployment(env, version, ref, digest, f"deploying {version}", production=production)


def _record_finish(
    ctx: Context, deployment_id: int | None, state: str, report: ReleaseReport, description: str
) -> None:
    if ctx.github is None or deployment_id is None:
        return
    ctx.github.finish_deployment(deployment_id, state, report.url or None, description)  # type: ignore[arg-type]


def release_notes(report: ReleaseReport) -> str:
    lines = [
        f"Image digest: `{report.digest}`",
        f"Environment: {report.environment} ({report.url})",
        "",
        "Infrastructure changes:",
    ]
    lines += [f"- `{c}`" for c in report.changes] or ["- none"]
    lines += ["", "Phases:"] + [f"- {p.name}: {p.seconds:.1f}s" for p in report.phases]
    return "\n".join(lines)
