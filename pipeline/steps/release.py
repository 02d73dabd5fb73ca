"""release and rollback: the chained steps, timed phase by phase.

release VERSION --env ENV: build, push, deploy, roll, smoke, record. When deploy, roll or smoke fails,
the service goes back to what ran before (by digest), the failure is recorded, and the error says why.
rollback --env ENV VERSION|--previous: no build; the version's digest comes from ECR, then deploy,
roll, smoke, record. Both are "deploy this digest": CloudFormation is the one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from pipeline.aws import cloudformation as cfn
from pipeline.errors import DeployError, InputError, PipelineError, RolloutError, SmokeTestError
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer, refuse_busy
from pipeline.steps.push import PushedImage, digest_of, find_release, push_image
from pipeline.steps.roll import RolloutOutcome, RolloutWatcher, explain_rolled_back
from pipeline.steps.smoke import SmokeTester
from pipeline.steps.version import parse_version
from pipeline.templates import names


class ReleaseOutcome(Enum):
    RELEASED = "released"
    ROLLED_BACK = "rolled back"  # failed, and the previous version serves again
    FAILED = "failed"  # failed with nothing to go back to


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    seconds: float
    ok: bool


@dataclass
class ReleaseReport:
    kind: str  # release | rollback
    environment: str
    version: str
    digest: str = ""
    url: str = ""
    outcome: ReleaseOutcome = ReleaseOutcome.FAILED
    cause: str = ""
    restored_version: str = ""
    changes: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)


@dataclass(frozen=True)
class Running:
    """What a service stack runs now, from its parameters."""

    version: str
    image_uri: str

    @property
    def digest(self) -> str:
        return digest_of(self.image_uri)


class ReleaseFailed(PipelineError):
    def __init__(self, report: ReleaseReport) -> None:
        back = f"; {report.environment} is back on {report.restored_version}" if report.restored_version else ""
        super().__init__(
            f"{report.kind} of {report.version} to {report.environment} failed: {report.cause}{back}",
            hint="The failure is recorded; fix the model and tag a new version."
            if report.kind == "release"
            else "Nothing else was changed.",
        )
        self.report = report


def running_version(ctx: Context, env: str) -> Running | None:
    stack = cfn.describe_stack(ctx.clients.cloudformation, ctx.service_stack(env))
    if (
        stack is None
        or stack.status in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE")
        or "ImageUri" not in stack.parameters
    ):
        return None
    return Running(stack.parameters.get("Version", ""), stack.parameters["ImageUri"])


class Engine:
    """Runs one release or rollback against one environment."""

    def __init__(self, ctx: Context, environment: str, report: ReleaseReport) -> None:
        self.ctx = ctx
        self.env = ctx.environment(environment)
        self.report = report
        self.stack_name = ctx.service_stack(environment)
        self.echo = ctx.echo

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.ctx.clock.now()
        self.echo(f"==> {name}")
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = self.ctx.clock.now() - start
            self.report.phases.append(Phase(name, start, seconds, ok))
            self.echo(f"<== {name} {'done' if ok else 'FAILED'} in {seconds:.1f}s")

    def refuse_if_busy(self) -> None:
        """Before anything changes: a stack mid-operation is refused (or waited for, with --wait)."""
        if not self.ctx.wait_if_busy:
            refuse_busy(cfn.describe_stack(self.ctx.clients.cloudformation, self.stack_name))

    def deploy_image(self, image: PushedImage) -> None:
        """deploy + roll + smoke for one digest; raises on the first failure."""
        ctx = self.ctx
        body = ctx.committed_template(names.template_file("service", self.env.name))
        deployer = Deployer(
            ctx.clients.cloudformation,
            ctx.clock,
            ctx.echo,
            timeout=float(self.env.service.rollout_timeout) + 600,
            wait_if_busy=ctx.wait_if_busy,
            poll=ctx.poll,
            role_arn=names.execution_role_arn(ctx.settings, self.env.name),
        )
        with self.phase("deploy"):
            try:
                result = deployer.deploy(self.stack_name, body, {"ImageUri": image.image_uri, "Version": image.version})
            except DeployError as err:
                raise DeployError(f"{err.message}{self._ecs_cause()}", hint=err.hint) from None
            self.report.changes = [c.line() for c in result.changes]
        stack = result.stack or cfn.describe_stack(ctx.clients.cloudformation, self.stack_name)
        assert stack is not None  # nosec B101 # the deploy just created or found the stack
        self.report.url = stack.outputs.get("ServiceUrl", "")
        with self.phase("roll"):
            watcher = RolloutWatcher(
                ctx.clients.ecs,
                ctx.clients.elbv2,
                ctx.clock,
                ctx.echo,
                timeout=float(self.env.service.rollout_timeout),
                poll=ctx.poll,
            )
            rollout = watcher.wait(
                stack.outputs["ClusterName"],
                stack.outputs["ServiceName"],
                stack.outputs["TaskDefinitionArn"],
                stack.outputs.get("TargetGroupArn"),
            )
            if rollout.outcome is not RolloutOutcome.COMPLETED:
                raise RolloutError(f"rollout {rollout.outcome.value}: {rollout.cause}")
        with self.phase("smoke"):
            tester = SmokeTester(ctx.clock, ctx.echo, poll=ctx.poll)
            tester.run(self.report.url, self.env.service.health_check_path, ctx.settings.smoke)

    def _ecs_cause(self) -> str:
        """When CloudFormation rolled back because ECS failed the deployment, say what ECS saw."""
        stack = cfn.describe_stack(self.ctx.clients.cloudformation, self.stack_name)
        if stack is None or "ClusterName" not in stack.outputs:
            return ""
        cause = explain_rolled_back(self.ctx.clients.ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"])
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
    from pipeline.aws import ecr as ecr_api

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
    """Record a GitHub deployment, then deploy + roll + smoke; on failure put `restore_to` back and say why."""
    report = engine.report
    deployment_id = _record_start(ctx, engine.env.name, image.version, ref, image.digest)
    try:
        engine.deploy_image(image)
    except (DeployError, RolloutError, SmokeTestError) as err:
        report.cause = err.message
        _restore(ctx, engine, restore_to, report)
        _record_finish(ctx, deployment_id, "failure", report, f"{failed}: {err.message}")
        raise ReleaseFailed(report) from None
    except PipelineError as err:
        report.cause = err.message
        _record_finish(ctx, deployment_id, "failure", report, f"{failed}: {err.message}")
        raise
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
    return ctx.github.start_deployment(env, version, ref, digest, f"deploying {version}")


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
