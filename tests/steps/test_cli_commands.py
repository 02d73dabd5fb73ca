"""The command line's one grammar on the local ground (real tasks, registry behind ECR, local GitHub):
`--env NAME` everywhere, `--output json` (one document on stdout, progress on stderr), the step
outputs in $GITHUB_OUTPUT, `--dry-run` (a change set shown and deleted, nothing built or pushed),
`pipeline logs` (what the model server printed, through the awslogs driver into CloudWatch Logs) and
`pipeline destroy`. Each test establishes what it needs, so they pass in any order."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline import cli
from pipeline.clock import WallClock
from pipeline.github import GitHubRecorder
from pipeline.steps.history import status
from pipeline.steps.release import rollback
from tests.steps.story import bootstrap, context
from tests.workflows.actions_runner import read_output_file

pytestmark = pytest.mark.slow


def aws(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


class Pipeline:
    """`pipeline ARGS` in this process, with the project's settings; returns (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Any) -> None:
        self.capsys = capsys
        monkeypatch.setattr(cli, "_settings", lambda _path: settings)
        monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.run(cli.cli, list(args))
        out = self.capsys.readouterr()
        return int(exited.value.code or 0), out.out, out.err


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Any) -> Any:
    bootstrap(ground, project.settings, ("v2.0.0", "v2.1.0", "v2.2.0"))
    return project


@pytest.fixture(scope="module")
def released(bootstrapped: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v2.0.0 released to staging through `pipeline release --output json`, with $GITHUB_OUTPUT set."""
    outputs = tmp_path_factory.mktemp("github") / "output"
    outputs.touch()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_settings", lambda _path: bootstrapped.settings)
        patch.setenv("GITHUB_OUTPUT", str(outputs))
        patch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        out, err = io.StringIO(), io.StringIO()
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        with pytest.raises(SystemExit) as exited:
            cli.run(cli.cli, ["release", "v2.0.0", "--env", "staging", "--output", "json"])
    assert exited.value.code == 0, err.getvalue()
    return {"stdout": out.getvalue(), "stderr": err.getvalue(), "outputs": read_output_file(outputs)}


def staging_runs(settings: Any, version: str = "2.0.0") -> None:
    """Establish that staging runs `version` (in ECR already), whatever a test before this one did."""
    cf = aws("cloudformation")
    names = [s["StackName"] for s in cf.describe_stacks()["Stacks"]]
    if (
        f"{settings.app.name}-service-staging" not in names
        or status(context(settings, github=False), "staging").version != version
    ):
        rollback(context(settings), "staging", version)


def stacks_images_deployments(settings: Any) -> dict[str, Any]:
    """Everything a dry run must leave as it was."""
    stacks = {
        s["StackName"]: (
            s["StackStatus"],
            tuple(sorted((p["ParameterKey"], p.get("ParameterValue")) for p in s.get("Parameters", []))),
        )
        for s in aws("cloudformation").describe_stacks()["Stacks"]
    }
    images = sorted(
        (i["imageDigest"], tuple(i.get("imageTags", [])))
        for i in aws("ecr").describe_images(repositoryName=settings.app.name)["imageDetails"]
    )
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    deployments = [(d.id, d.state) for env in ("staging", "production") for d in github.deployments(env, 50)]
    return {"stacks": stacks, "images": images, "deployments": deployments}


def change_sets(stacks: Any) -> dict[str, list[str]]:
    cf = aws("cloudformation")
    return {
        stack: sorted(c["ChangeSetId"] for c in cf.list_change_sets(StackName=stack)["Summaries"]) for stack in stacks
    }


def test_release_prints_one_json_document_and_writes_the_step_outputs(released: dict[str, Any]) -> None:
    report = json.loads(released["stdout"])  # the whole of stdout is one JSON document
    assert (report["kind"], report["environment"], report["version"], report["outcome"]) == (
        "release",
        "staging",
        "2.0.0",
        "released",
    )
    assert report["url"].startswith("http://127.") and report["digest"].startswith("sha256:")
    assert [p["name"] for p in report["phases"]] == ["build", "check", "push", "deploy", "roll", "smoke"]
    assert "==> build" in released["stderr"] and "==> smoke" in released["stderr"], "progress goes to stderr"
    assert released["outputs"] == {"url": report["url"], "digest": report["digest"], "version": "2.0.0"}


def test_status_history_and_diff_answer_in_json(
    released: dict[str, Any], bootstrapped: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(monkeypatch, capsys, bootstrapped.settings)
    staging_runs(bootstrapped.settings)
    code, out, err = pipeline("status", "--env", "staging", "--output", "json")
    assert code == 0, err
    state = json.loads(out)
    assert (state["environment"], state["version"], state["rollout_state"]) == ("staging", "2.0.0", "COMPLETED")
    code, out, err = pipeline("history", "--env", "staging", "--output", "json", "--limit", "3")
    assert code == 0, err
    assert json.loads(out)[0]["version"] == "2.0.0"
    code, out, err = pipeline("diff", "--env", "staging", "--output", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "environment": "staging",
        "stack": f"{bootstrapped.settings.app.name}-service-staging",
        "version": "2.0.0",
        "outcome": "no changes",
        "changes": [],
    }
    code, out, err = pipeline("bootstrap", "--output", "json")  # bootstrapped before: nothing to change
    assert code == 0, err
    assert json.loads(out) == [
        {"stack": f"{bootstrapped.settings.app.name}-registry", "outcome": "no changes"},
        {"stack": f"{bootstrapped.settings.app.name}-ci-access", "outcome": "no changes"},
    ]
    # The first releases' positional form still answers, with a deprecation warning on stderr.
    code, out, err = pipeline("status", "staging", "--output", "json")
    assert code == 0 and json.loads(out)["version"] == "2.0.0"
    assert "warning: `pipeline status staging` is deprecated; use `pipeline status --env staging`" in err


def test_dry_runs_show_the_change_set_and_change_nothing(
    released: dict[str, Any],
    bootstrapped: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    settings = bootstrapped.settings
    staging_runs(settings)
    pipeline = Pipeline(monkeypatch, capsys, settings)
    outputs = tmp_path / "output"
    outputs.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    before = stacks_images_deployments(settings)
    sets_before = change_sets(before["stacks"])

    # A release to staging (which builds): nothing is built or pushed; a placeholder digest shows the change.
    code, out, err = pipeline("release", "v2.1.0", "--env", "staging", "--dry-run", "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["outcome"], report["digest"], report["version"]) == ("previewed", "", "2.1.0")
    assert [p["name"] for p in report["phases"]] == ["preview"]
    assert "Modify  TaskDefinition [AWS::ECS::TaskDefinition] (replacement)" in report["changes"]
    assert "dry run: 2.1.0 is not built or pushed" in err and "==> build" not in err
    # A promotion to production, never deployed: a CREATE change set, and no stack left behind.
    code, out, err = pipeline("release", "v2.0.0", "--env", "production", "--dry-run", "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["outcome"], report["digest"]) == ("previewed", released["outputs"]["digest"])
    assert "Add     Service [AWS::ECS::Service]" in report["changes"]
    # rollback and deploy of a version in ECR: shown in the table, then nothing executed
    code, out, err = pipeline("rollback", "--env", "production", "2.0.0", "--dry-run")
    assert code == 0, err
    assert re.search(r"^outcome +previewed$", out, re.M) and "==> preview" in out and "executing" not in out
    code, out, err = pipeline("deploy", "2.0.0", "--env", "staging", "--dry-run", "--output", "json")
    assert code == 0, err
    assert (json.loads(out)["outcome"], json.loads(out)["changes"]) == ("previewed", [])

    assert stacks_images_deployments(settings) == before
    assert change_sets(before["stacks"]) == sets_before, "every preview's change set was deleted"
    assert outputs.read_text() == "", "a dry run writes no step outputs"


def test_logs_show_what_the_model_server_printed(
    released: dict[str, Any], bootstrapped: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The task's stdout reaches CloudWatch Logs through the awslogs driver (group and stream prefix from
    the task definition), and `pipeline logs` reads it back."""
    import urllib.request

    from pipeline.steps.logs import read

    settings = bootstrapped.settings
    staging_runs(settings)
    state = status(context(settings, github=False), "staging")
    with urllib.request.urlopen(f"{state.url}/health", timeout=10) as answer:  # a request the server logs
        assert answer.status == 200
    pipeline = Pipeline(monkeypatch, capsys, settings)
    code, out, err = pipeline("logs", "--env", "staging", "--since", "1h", "--output", "json")
    assert code == 0, err
    events = json.loads(out)
    messages = [e["message"] for e in events]
    assert any(m.startswith("model server 2.0.0 starting on port ") for m in messages), messages[:20]
    assert any(m.endswith("response:200") for m in messages), messages[:20]
    cluster = next(
        o["OutputValue"]
        for o in aws("cloudformation").describe_stacks(StackName=f"{settings.app.name}-service-staging")["Stacks"][0][
            "Outputs"
        ]
        if o["OutputKey"] == "ClusterName"
    )
    tasks = aws("ecs").list_tasks(cluster=cluster)["taskArns"]
    task_ids = {arn.rsplit("/", 1)[-1] for arn in tasks}
    streams = {e["stream"] for e in events}
    assert all(s.startswith("model/model/") for s in streams), streams  # PREFIX/CONTAINER/TASK-ID
    assert task_ids & {s.rsplit("/", 1)[-1] for s in streams}, (task_ids, streams)

    # --follow: events that arrive after the first read are printed once each, as they come.
    ctx = context(settings, github=False)
    polls: list[int] = []

    def sleep(_seconds: float) -> None:
        polls.append(1)
        with urllib.request.urlopen(f"{state.url}/health", timeout=10):
            pass

    ctx.clock = type("TrafficClock", (WallClock,), {"sleep": staticmethod(sleep)})()
    seen: list[str] = []
    first_read = len(list(read(context(settings, github=False), "staging", 3600)))
    follow = read(ctx, "staging", 3600, follow=True)
    for event in follow:
        seen.append(event.event_id)
        if len(seen) > first_read and polls:
            break
    follow.close()
    assert len(seen) == len(set(seen)), "each event once"
    assert polls, "the events after the first read came from a later poll"

    # Ctrl-C (here: during the wait between polls) ends `pipeline logs --follow` quietly, exit 0.
    def interrupted(_clock: WallClock, _seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(WallClock, "sleep", interrupted)
    code, out, err = pipeline("logs", "--env", "staging", "--follow")
    assert code == 0, err
    assert re.search(r"^\S+ \S{12} model server 2\.0\.0 starting on port \d+$", out, re.M), out[:500]


def test_logs_refuse_a_bad_duration_on_one_line(
    bootstrapped: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(monkeypatch, capsys, bootstrapped.settings)
    code, out, err = pipeline("logs", "--env", "staging", "--since", "yesterday")
    assert (code, out) == (2, "")
    assert err == "error: --since 'yesterday' is not a duration. Use a number and a unit: 30s, 10m, 2h or 1d.\n"


def test_destroy_asks_refuses_production_and_says_what_is_left(
    released: dict[str, Any], bootstrapped: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = bootstrapped.settings
    staging_runs(settings)
    pipeline = Pipeline(monkeypatch, capsys, settings)
    stack = f"{settings.app.name}-service-staging"
    before = stacks_images_deployments(settings)

    code, out, err = pipeline("destroy", "--env", "production")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (
        f"error: production is a production environment: destroying {settings.app.name}-service-production "
        "needs --yes. Run `pipeline destroy --env production --yes` if you mean it."
    )
    code, out, err = pipeline("destroy", "--env", "staging")  # pytest's stdin is no terminal
    assert code == 2 and "there is no terminal to ask" in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("stagin\n"))
    code, out, err = pipeline("destroy", "--env", "staging")
    assert code == 2 and "not confirmed ('stagin' is not 'staging'); nothing was deleted" in err
    assert stacks_images_deployments(settings) == before

    monkeypatch.setattr("sys.stdin", Terminal("staging\n"))
    code, out, err = pipeline("destroy", "--env", "staging")
    assert code == 0, err
    assert f"{stack}: deleting (UPDATE_COMPLETE, running 2.0.0)" in out or f"{stack}: deleting (" in out
    assert "DELETE_IN_PROGRESS" in out and f"{stack}: deleted" in out, out
    images = len(before["images"])
    assert f"  ECR repository {settings.app.name} with {images} image(s)" in out
    stacks = {s["StackName"] for s in aws("cloudformation").describe_stacks()["Stacks"]}
    assert stack not in stacks and f"{settings.app.name}-registry" in stacks
    assert stacks_images_deployments(settings)["images"] == before["images"], "the images stay"
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{settings.app.name}-staging")["logGroups"]
    assert groups == [], "the log group went with the stack"

    code, out, err = pipeline("destroy", "--env", "staging", "--yes", "--output", "json")
    assert code == 0, err
    assert json.loads(out)["outcome"] == "absent" and f"{stack} does not exist: nothing to delete" in err
