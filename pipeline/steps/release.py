"""release and rollback: the chained steps, timed phase by phase.

release VERSION --env ENV: build, push, deploy, roll, smoke, record. When deploy, roll or smoke fails,
the service goes back to what ran before (by digest), the failure is recorded, and the error says why.
rollback --env ENV VERSION|--previous: no build; the version's digest comes from ECR, then deploy,
roll, smoke, record. Both are "deploy this digest": CloudFormation is the one source of truth.

Re-runs: a version already in ECR is never built again. One that never released to the environment
(no successful GitHub deployment of it there) is deployed again with the digest in ECR, once ECR's
manifest is checked to hash to it; one that did is refused, unless an earlier attempt of this same
workflow run released it ("Re-run all jobs"): then there is nothing to do. Deployments a killed run
left in progress on GitHub are finished as `error` by the next run, which also waits for the stack
operation such a run started. SIGINT or SIGTERM mid-release stops the ECS deployment in flight
(StopServiceDeployment, rollback) and finishes the GitHub deployment as `error`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.aws import cloudformation as cfn
from pipeline.aws import ecr as ecr_api
from pipeline.aws import ecs as ecs_api
from pipeline.errors import (
    DeployError,
    GitHubError,
    InputError,
    Interrupted,
    PipelineError,
    ReleaseFailed,
    RolloutError,
    SmokeTestError,
)
from pipeline.report import Phase, ReleaseOutcome, ReleaseReport
from pipeline.steps.context import Context
from pipeline.steps.deploy import refuse_busy, refuse_unusable
from pipeline.steps.interrupt import read_now
from pipeline.steps.protection import protect_once_created, unprotected_for_create
from pipeline.steps.push import PushedImage, digest_of, find_release, push_image
from pipeline.steps.roll import RolloutResult, deployments_line, explain_rolled_back, require_completed
from pipeline.steps.scaling import kept_desired_count
from pipeline.steps.smoke import SmokeResult
from pipeline.steps.source import check_source
from pipeline.steps.strategy import Rollout
from pipeline.steps.version import parse_version
from pipeline.templates import names

# A dry-run release to an environment that builds neither builds nor pushes: its change set pins the
# repository to this digest instead, so the task definition shows as replaced, as the release will.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64

if TYPE_CHECKING:
    from pipeline.github import DeploymentRecord


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
        self.report.stages = self.strategy.stages  # the strategy notes them as it follows the deployment

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
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        # Before a build: a version pushed for a stack that cannot take it is burned in ECR.
        refuse_unusable(self.clients.cloudformation, stack)
        if not self.ctx.wait_if_busy:
            refuse_busy(stack)

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
            parameters = (
                {"ImageUri": image.image_uri, "Version": image.version}
                | kept_desired_count(self.ctx, self.env.name, body)
                | unprotected_for_create(self.ctx, self.env.name, body)
            )
            deployer = self.ctx.deployer(self.env.name)
            try:
                result = deployer.deploy(self.stack_name, body, parameters, while_waiting=follow)
                result = protect_once_created(deployer, self.stack_name, body, parameters, result)
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
            raise InputError(  # as status and logs say it: exit 2
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

    def preview(self, image: PushedImage) -> None:
        """--dry-run: the change set a deploy of `image` would execute, shown and deleted; nothing else."""
        body = self.ctx.committed_template(names.template_file("service", self.env.name))
        with self.phase("preview"):
            result = self.ctx.deployer(self.env.name).deploy(
                self.stack_name, body, {"ImageUri": image.image_uri, "Version": image.version}, execute=False
            )
        self.report.changes = [c.line() for c in result.changes]
        self.report.outcome = ReleaseOutcome.PREVIEWED
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        self.report.url = stack.outputs.get("ServiceUrl", "") if stack else ""

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

    def stop_rollout(self) -> str:
        """SIGINT/SIGTERM after the deploy started: stop the ECS deployment still rolling out on this
        environment's service with a rollback, so nothing rolls on unwatched; says what was done."""
        if not self.deploy_started:
            return ""
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        if stack is None or "ClusterName" not in stack.outputs:
            return f"{self.stack_name} has no ECS service yet; CloudFormation carries on"
        cluster, service = stack.outputs["ClusterName"], stack.outputs["ServiceName"]
        in_flight = ecs_api.deployments_in_flight(self.clients.ecs, cluster, service)
        if not in_flight:
            return "no ECS deployment was rolling out"
        done = [ecs_api.stop_deployment(self.clients.ecs, d.arn) for d in in_flight]
        stopped = ", ".join(f"{d.short_id} ({d.status})" for d in done)
        return f"stopped ECS deployment {stopped} with a rollback to the revision that ran before"

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
            hint=f"Run `pipeline status --env {self.env.name}` to see where it stands.",
        )

    def _ecs_cause(self) -> str:
        """When CloudFormation rolled back because ECS failed the deployment, say what ECS saw."""
        stack = cfn.describe_stack(self.clients.cloudformation, self.stack_name)
        if stack is None or "ClusterName" not in stack.outputs:
            return ""
        cause = explain_rolled_back(self.clients.ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"])
        return f" (ECS: {cause})" if cause else ""


def release(
    ctx: Context, environment: str, tag: str, ref: str | None = None, *, dry_run: bool = False
) -> ReleaseReport:
    version = parse_version(tag)
    env = ctx.environment(environment)  # unknown environments are refused before any work
    ctx.clients.check_credentials()
    report = ReleaseReport("release", env.name, version)
    if not dry_run:  # a rehearsal changes nothing, GitHub records included
        finish_abandoned(ctx, env.name)
    engine = Engine(ctx, env.name, report)
    engine.refuse_if_busy()
    # A stale template is refused before the build: a version pushed to ECR can never be built again.
    ctx.committed_template(names.template_file("service", env.name))
    previous = running_version(ctx, env.name)
    ecr = ctx.clients.ecr

    existing = ecr_api.image_by_tag(ecr, ctx.repository, version)
    released = ctx.github.succeeded(env.name, version) if existing is not None and ctx.github else None
    if released is not None and ctx.github is not None and ctx.github.made_by_this_run(released):
        return _released_by_this_run(ctx, engine, released, existing.digest if existing else "")
    if existing is not None and env.delivery.build:
        # An environment that builds never rebuilds: the image in ECR is the one this version ships.
        image = _pushed_before(ctx, env.name, version, existing.digest, released)
    elif existing is not None:
        ctx.echo(f"{version} is already in ECR as {existing.digest}: promoting it to {env.name} without a build")
        image = find_release(ecr, ctx.repository, version)
    elif not env.delivery.build:
        builders = ", ".join(e.name for e in ctx.settings.environments if e.delivery.build)
        raise InputError(
            f"version {version} is not in ECR and {env.name} does not build (build = false)",
            hint=f"Release it to {builders} first; {env.name} promotes the digest verified there.",
        )
    elif dry_run:
        check_source(ctx.settings.root, ref or f"v{version}", ctx.echo)
        ctx.echo(
            f"dry run: {version} is not built or pushed; the change set pins a placeholder digest "
            f"({PLACEHOLDER_DIGEST[:15]}...) where the release would pin the pushed one"
        )
        image = PushedImage(version, PLACEHOLDER_DIGEST, ecr_api.repository_uri(ecr, ctx.repository))
    else:
        check_source(ctx.settings.root, ref or f"v{version}", ctx.echo)  # before the build: ECR tags are immutable
        image = _build_and_push(ctx, engine, version)  # a failed build is not a deployment: nothing recorded
    if dry_run:
        engine.preview(image)
        report.digest = "" if image.digest == PLACEHOLDER_DIGEST else image.digest
        return report
    report.digest = image.digest
    _ship(ctx, engine, image, previous, ref or f"v{version}", done=f"{version} is live", failed=f"{version} failed")
    if env.delivery.github_release and ctx.github is not None:
        with engine.phase("record"):
            body = release_notes(report)
            url = ctx.github.create_release(f"v{version}", f"v{version}", body)
            ctx.echo(f"GitHub release: {url}")
    return report


def require_one_target(target: str | None, previous: bool) -> None:
    if target is not None and previous:
        raise InputError(
            f"give a VERSION ({target}) or --previous, not both",
            hint="For example `pipeline rollback --env staging 1.0.0`.",
        )
    if target is None and not previous:
        raise InputError("give a VERSION or --previous", hint="For example `pipeline rollback --env staging 1.0.0`.")


def resolve_version(ctx: Context, environment: str, target: str | None, previous: bool = False) -> str:
    """The version `rollback` would deploy, changing nothing. With GitHub configured, `previous` is read
    from its deployments alone: the rollback workflow resolves it before assuming any AWS role."""
    env = ctx.environment(environment)
    require_one_target(target, previous)
    if target is not None:
        return parse_version(target)
    current = None
    if ctx.github is None:
        ctx.clients.check_credentials()
        current = running_version(ctx, env.name)
    return _previous_version(ctx, env.name, current, known_deployed=ctx.github is None)


def rollback(
    ctx: Context, environment: str, target: str | None, previous: bool = False, *, dry_run: bool = False
) -> ReleaseReport:
    env = ctx.environment(environment)
    require_one_target(target, previous)
    ctx.clients.check_credentials()
    if not dry_run:
        finish_abandoned(ctx, env.name)
    current = running_version(ctx, env.name)
    version = parse_version(target) if target else _previous_version(ctx, env.name, current)
    image = find_release(ctx.clients.ecr, ctx.repository, version)  # refused here when missing: nothing changed
    report = ReleaseReport("rollback", env.name, version, digest=image.digest)
    engine = Engine(ctx, env.name, report)
    engine.refuse_if_busy()
    if dry_run:
        engine.preview(image)
        return report
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
            err.message = report.cause  # with the recording's own failure, when GitHub refused it too
            raise
    except (Interrupted, KeyboardInterrupt) as stop:
        interrupted = stop if isinstance(stop, Interrupted) else engine.interrupted()
        stopped = read_now(engine.stop_rollout, "the ECS deployment in flight")
        if stopped:
            interrupted = Interrupted(f"{interrupted.message}; then {stopped}", hint=interrupted.hint)
        report.cause = interrupted.message
        report.outcome = ReleaseOutcome.INTERRUPTED
        interrupted.report = report
        what = f"{report.kind} of {report.version} interrupted during {engine.current_phase or 'start'}"
        _record_finish(ctx, deployment_id, "error", report, f"{what}; {stopped or 'AWS carries on'}")
        raise interrupted from None
    report.outcome = ReleaseOutcome.RELEASED
    _record_finish(ctx, deployment_id, "success", report, done)


def finish_abandoned(ctx: Context, env: str) -> None:
    """A run that was killed or timed out leaves its GitHub deployment in progress (deploys of one
    environment never overlap, so any found now is such a one): finish it as `error`, say so, and wait
    for the stack operation that run may have left running before looking at the stack."""
    if ctx.github is None:
        return
    left = ctx.github.unfinished(env)
    for record in left:
        ctx.github.finish_deployment(
            record.id,
            "error",
            record.url or "",
            f"abandoned: the run deploying {record.version} ended without finishing",
        )
        ctx.echo(
            f"GitHub deployment #{record.id} ({record.version} to {env}) was left {record.state or 'without a status'} "
            "by a run that ended without finishing it (killed or timed out): marked error"
        )
    if left:
        ctx.deployer(env).settle(ctx.service_stack(env))


def _pushed_before(ctx: Context, env: str, version: str, digest: str, released: DeploymentRecord | None) -> PushedImage:
    """The image an earlier attempt pushed, for an environment that builds: refused when the version
    released there before (or when GitHub is not there to say), else checked and deployed again."""
    if released is not None or ctx.github is None:
        before = f" and was released to {env} (GitHub deployment #{released.id})" if released else ""
        raise InputError(
            f"version {version} is already in ECR ({digest}){before}; tags are immutable",
            hint=f"Tag a new version, or run `pipeline rollback --env {env} {version}` to deploy it again.",
        )
    ecr = ctx.clients.ecr
    served = ecr_api.manifest_digest(ecr, ctx.repository, version)
    recorded = {r.digest for r in ctx.github.deployments_of(env, version)}
    if served != digest or recorded - {digest}:
        raise InputError(
            f"version {version} in ECR is {digest}, but its manifest hashes to {served} and earlier attempts "
            f"recorded {', '.join(sorted(recorded)) or 'nothing'}",
            hint="Do not deploy an image whose digest is not confirmed; tag a new version.",
        )
    ctx.echo(
        f"{version} is already in ECR as {digest} (manifest checked), pushed by an earlier attempt that never "
        f"released to {env}: deploying that digest again, no build"
    )
    return PushedImage(version, digest, ecr_api.repository_uri(ecr, ctx.repository))


def _released_by_this_run(ctx: Context, engine: Engine, released: DeploymentRecord, digest: str) -> ReleaseReport:
    """ "Re-run all jobs" after a later job failed: this environment's job already released the version."""
    report = engine.report
    report.digest, report.url, report.outcome = digest or released.digest, released.url or "", ReleaseOutcome.RELEASED
    ctx.echo(
        f"{report.version} was released to {engine.env.name} by an earlier attempt of this run "
        f"(GitHub deployment #{released.id}): nothing to do"
    )
    if engine.env.delivery.github_release and ctx.github is not None:
        with engine.phase("record"):  # the attempt may have failed at this very step
            url = ctx.github.create_release(f"v{report.version}", f"v{report.version}", release_notes(report))
            ctx.echo(f"GitHub release: {url}")
    return report


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


def _previous_version(ctx: Context, env: str, current: Running | None, *, known_deployed: bool = True) -> str:
    """The version before the current one. `known_deployed=False` (rollback --resolve with GitHub: no AWS
    read, so `current` is unknown) leaves "never deployed" to GitHub's records."""
    if current is None and known_deployed:
        raise InputError(
            f"{env} is not deployed: there is no current version to roll back from",
            hint=f"Name the version to deploy: `pipeline rollback --env {env} VERSION`.",
        )
    if ctx.github is not None:
        record = ctx.github.previous_successful(env)
        if record is not None:
            ctx.echo(f"previous successful deployment on GitHub: {record.version} ({record.digest})")
            return record.version
        raise InputError(
            f"GitHub has no successful deployment of {env} before the current one",
            hint="Name the version to roll back to.",
        )
    from pipeline.steps.history import running_revision, stack_history

    # Older revisions than the running one only: a release CloudFormation rolled back left a newer one.
    for entry in stack_history(ctx, env, before=running_revision(ctx, env)):
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
    try:
        ctx.github.finish_deployment(deployment_id, state, report.url or None, description)  # type: ignore[arg-type]
    except GitHubError as err:
        if state == "success":  # never a silent success: the job fails and says what serves
            raise GitHubError(
                f"{description}, but GitHub could not record it: {err.message}",
                hint=f"GitHub deployment {deployment_id} stays in_progress. {err.hint or 'Re-run the job.'}",
            ) from None
        # A failure stays the failure: recording it is the second cause, not a replacement.
        report.cause += f"; recording it on GitHub failed too: {err.message}"
        ctx.echo(f"GitHub could not record deployment {deployment_id} as {state}: {err.message}")


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
