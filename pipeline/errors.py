"""The pipeline's error tree. The CLI reports each once, as one line with a hint, and picks the exit code.

PipelineError                 anything the pipeline expects and explains (exit 1)
├── ConfigError               pipeline.toml or a command argument is wrong (exit 2)
│   └── ConfigProblems        every problem of one settings file, on one line
├── InputError                a bad command-line value: version, environment, ... (exit 2)
│   └── GoldenSetError        the model gate's golden set is not one {request, expected} object a line
├── AwsError                  an AWS call failed; carries the operation and the AWS error code
│   ├── CredentialsError      no usable AWS credentials
│   ├── AwsConfigError        the AWS configuration is unusable: a profile, the config file, an endpoint URL (exit 2)
│   └── StackBusyError        a stack is mid-operation and cannot take another
├── BuildError                an image build or pre-push check failed
├── ContainerError            a container could not be pulled or started (ECS: CannotPullContainerError, ...)
├── PushError                 pushing the image failed (auth, immutable tag, ...)
├── DeployError               a stack create/update failed or rolled back
├── RolloutError              the ECS rollout failed (circuit breaker, timeout)
├── SmokeTestError            the service answered wrongly through its URL
├── SmokeAnswerProblem        one wrong answer to the smoke request (retried; the pre-push check refuses it)
├── ReleaseFailed             a release or rollback failed; carries its report (what ran, what serves now)
├── Interrupted               Ctrl-C/SIGTERM while AWS works: says what state it left (exit 130/143)
├── GitHubError               recording to GitHub failed
│   └── GitHubConfigError     GITHUB_REPOSITORY or GITHUB_API_URL is malformed (exit 2)
├── LocalEnvironmentError     a local stand-in (moto, registry, GitHub) could not start
└── MissingExtraError         a command needs an optional extra that is not installed (exit 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.report import ReleaseReport


class PipelineError(Exception):
    """Root of every error the pipeline expects. `hint` says what would fix it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}. {self.hint}" if self.hint else text


class ConfigError(PipelineError):
    exit_code = 2

    def __init__(self, key: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{key}: {problem}", hint=hint)
        self.key = key
        self.problem = problem


class InputError(PipelineError):
    exit_code = 2


class AwsError(PipelineError):
    def __init__(self, message: str, *, operation: str = "", code: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.operation = operation
        self.code = code


class CredentialsError(AwsError):
    exit_code = 2


class AwsConfigError(AwsError):
    """boto3's own configuration (AWS_PROFILE, the AWS config file, AWS_ENDPOINT_URL) is unusable: bad input."""

    exit_code = 2


class StackBusyError(AwsError):
    pass


class BuildError(PipelineError):
    pass


class ContainerError(PipelineError):
    """The container could not be pulled or started (ECS: CannotPullContainerError and friends)."""


class PushError(PipelineError):
    pass


class DeployError(PipelineError):
    pass


class RolloutError(PipelineError):
    pass


class SmokeTestError(PipelineError):
    pass


class SmokeAnswerProblem(PipelineError):
    """What is wrong with one answer to the smoke request (`message`); the smoke test retries on it,
    the pre-push check refuses the image with it."""


class ReleaseFailed(PipelineError):
    """A release or rollback failed after it changed something; `report` says what ran and what serves now."""

    def __init__(self, report: ReleaseReport) -> None:
        back = f"; {report.environment} is back on {report.restored_version}" if report.restored_version else ""
        super().__init__(
            f"{report.kind} of {report.version} to {report.environment} failed: {report.cause}{back}",
            hint="The failure is recorded; fix the model and tag a new version."
            if report.kind == "release"
            else "Nothing else was changed.",
        )
        self.report = report


class Interrupted(PipelineError):
    """Ctrl-C or SIGTERM while CloudFormation or ECS works. The message says what state the stack or
    service was in when we stopped watching (and the rollout the release stopped); `report` is set when a
    release was running. The CLI sets `exit_code` from the signal: 130 (SIGINT) or 143 (SIGTERM)."""

    exit_code = 130
    report: ReleaseReport | None = None


class GitHubError(PipelineError):
    pass


class GitHubConfigError(GitHubError):
    """A GitHub variable (GITHUB_REPOSITORY, GITHUB_API_URL) is malformed: bad input, refused before any call."""

    exit_code = 2


class LocalEnvironmentError(PipelineError):
    pass


class MissingExtraError(PipelineError):
    exit_code = 2


class ConfigProblems(ConfigError):
    """Every problem found in one settings file, reported together on one line (exit 2).

    `key` and `hint` are the first problem's, so code that handles one ConfigError keeps working.
    """

    def __init__(self, source: str, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigProblems needs at least one problem")
        first = problems[0]
        super().__init__(first.key, first.problem, hint=first.hint)
        self.source = source
        self.problems = tuple(problems)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.problems)

    def one_line(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].one_line()
        listed = "; ".join(p.one_line().rstrip(".") for p in self.problems)
        end = "" if listed.endswith("?") else "."
        return f"{self.source}: {len(self.problems)} problems: {listed}{end}"


class GoldenSetError(InputError):
    """The golden set file is not one {"request": ..., "expected": ...} object a line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint='Write {"request": ..., "expected": ...} per line.')
