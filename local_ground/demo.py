"""`pipeline demo` (`make demo`): the pipeline end to end on this machine, no AWS or GitHub account.

A thin script over `pipeline local`: it makes a scratch model repository (a copy of this project
building on the local Debian Python base, its versions tagged v1.0.0 to v1.3.0, staging released as a
canary behind the golden-set gate), then runs `pipeline local exec -- python -m local_ground.demo` in
it (the same session `pipeline local` starts for users: local AWS running tasks for real behind a
local load balancer, the registry behind ECR, a local GitHub that knows the tags). Inside, the demo
runs the commands users run: `pipeline bootstrap`; `pipeline release vX --env staging` for v1.0.0 and
v1.1.0; v1.2.0, whose model passes the pre-push check but fails in staging (the environment pins the
feature order the model was not trained on), so its tasks fail their health checks and the deployment
is rolled back; v1.3.0, trained on shuffled labels: healthy, fast and wrong, stopped by the model gate
at the test listener before any production request reaches it; `pipeline rollback 1.0.0 --env
staging` on request; then `pipeline history` and `pipeline status`. A client sends production traffic
through each release; the demo prints per release the phases, the strategy, the share of production
requests the new version served and the time from a failed decision to all traffic back. Exit 0 only
when 1.0.0 runs, 1.2.0 and 1.3.0 were rolled back and v1.3.0 served no production request. Everything
it starts stops when it ends.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.errors import PipelineError
from pipeline.report import Phase, ReleaseOutcome, ReleaseReport

Echo = Callable[[str], None]
ENVIRONMENT = "staging"
MODEL_DIR = "model-server"
GOOD_FEATURES = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"
# v1.2.0 is retrained on another column order: fine on its own, wrong where the order is pinned.
BAD_FEATURES = "petal_length_cm,petal_width_cm,sepal_length_cm,sepal_width_cm"
# (tag, training columns, shuffled labels): v1.3.0 is healthy but wrong.
VERSIONS = (
    ("v1.0.0", GOOD_FEATURES, False),
    ("v1.1.0", GOOD_FEATURES, False),
    ("v1.2.0", BAD_FEATURES, False),
    ("v1.3.0", GOOD_FEATURES, True),
)
# Staging as the demo releases it: a canary behind the model gate (minutes are scaled like the rest).
CANARY = 'strategy = "canary"\ncanary_percent = 10.0\ncanary_bake_minutes = 2\nbake_minutes = 1\n'
PHASES = ("build", "check", "push", "deploy", "roll", "smoke", "record", "rollback")


# --- outside: the scratch repository and `pipeline local exec` -----------------------------------


def _git(root: Path, *args: str) -> None:
    command = ["git", "-C", str(root), "-c", "user.email=demo@localhost", "-c", "user.name=demo", *args]
    subprocess.run(command, check=True, capture_output=True)


def prepare_project(source: Path, work: Path, base_image: str, echo: Echo) -> Path:
    """A scratch copy of the project as a model repository: its settings build the example model with
    buildah on `base_image` (a build argument in pipeline.toml, as a user would set it), and its
    versions are git tags. The demo changes nothing in the checkout."""
    settings = config.load(source / config.DEFAULT_PATH)
    work.mkdir(parents=True)
    shutil.copytree(source / settings.image.context, work / MODEL_DIR)
    text = (source / config.DEFAULT_PATH).read_text(encoding="utf-8")
    for pattern, replacement in (
        (r"(?m)^context = .*$", f'context = "{MODEL_DIR}"'),
        (r"(?m)^builder = .*$", f'builder = "buildah"\nbuild_args = {{ BASE_IMAGE = {json.dumps(base_image)} }}'),
        (r"(?m)^golden_set = .*$", f'golden_set = "{MODEL_DIR}/golden.jsonl"'),
        (r"(?m)^\[environments\.staging\]\n", f"[environments.staging]\n{CANARY}"),
    ):
        text, count = re.subn(pattern, replacement, text, count=1)
        if count != 1:
            raise PipelineError(
                f"{config.DEFAULT_PATH}: no line matches {pattern}", hint="Keep [image] context/builder."
            )
    (work / config.DEFAULT_PATH).write_text(text, encoding="utf-8")
    from pipeline.synth import write_templates

    write_templates(config.load(work / config.DEFAULT_PATH), work / "cloudformation")  # valid as written
    echo(f"{ENVIRONMENT}: canary 10% behind the golden-set gate (the demo's settings)")
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "the iris model server")
    for tag, _features, _shuffle in VERSIONS:
        _git(work, "tag", tag)
    echo(f"project copied to {work} (a git repository tagged {', '.join(v[0] for v in VERSIONS)})")
    return work


def run_demo(root: Path, echo: Echo) -> int:
    from local_ground import session
    from local_ground.environ import scoped_environ
    from local_ground.python_base import ensure_python_base

    for tool in ("buildah", "docker-registry", "git"):
        if shutil.which(tool) is None:
            raise PipelineError(f"{tool} is not installed", hint="Run `make setup`.")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pipeline-demo-") as scratch:
        work = Path(scratch)
        with scoped_environ({"PIPELINE_BUILDAH_ROOT": str(work / "buildah")}):
            echo("==> local Python base image (built once with debootstrap, then cached)")
            base = ensure_python_base(lambda line: echo(f"  {line}"))
            echo(f"  {base.name} ready ({base.source.value}, {base.seconds:.1f}s)")
            project = prepare_project(root, work / "project", base.name, echo)
            echo("==> pipeline local exec -- python -m local_ground.demo: the local AWS, registry and GitHub")
            code = session.exec_with_ground(
                project, [sys.executable, "-m", "local_ground.demo"], lambda line: echo(f"  {line}")
            )
    echo(f"\ndemo finished in {time.monotonic() - started:.0f}s; everything it started has stopped")
    return code


# --- inside: the commands users run ---------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    output: str  # stdout and stderr, as a terminal shows them

    @property
    def error(self) -> str:
        """The CLI's one-line error, if it printed one."""
        return next((line for line in reversed(self.output.splitlines()) if line.startswith("error: ")), "")


def run_command(argv: Sequence[str], echo: Echo, cwd: Path) -> Ran:
    """Run a `pipeline` command as a user would, its output shown as it comes."""
    echo(f"$ {' '.join(argv)}")
    process = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None  # nosec B101 # stdout=PIPE
    lines = []
    for line in process.stdout:
        lines.append(line)
        echo(f"  {line.rstrip()}")
    return Ran(process.wait(), "".join(lines))


_TITLE = re.compile(r"^(release|rollback) (\S+) -> (\S+)$")
_ROW = re.compile(r"^(\S+(?: \S+)?)\s{2,}(.*)$")
_PHASE = re.compile(r"^(\d+\.\d)s (ok|FAILED)$")


def parse_report(output: str) -> ReleaseReport | None:
    """The last report table (pipeline.report.report_table) a release or rollback printed."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines[:-1]) if _TITLE.match(line) and set(lines[i + 1]) == {"-"}]
    if not starts:
        return None
    title = _TITLE.match(lines[starts[-1]])
    assert title is not None  # nosec B101 # matched above
    kind, version, environment = title.groups()
    report = ReleaseReport(kind, environment, version)
    for line in lines[starts[-1] + 2 :]:
        row = _ROW.match(line)
        if row is None:
            break
        key, value = row.group(1), row.group(2).strip()
        if key.startswith("phase "):
            phase = _PHASE.match(value)
            if phase is None:
                break
            report.phases.append(
                Phase(key[len("phase ") :], report.seconds, float(phase.group(1)), phase.group(2) == "ok")
            )
        elif key == "outcome":
            report.outcome = ReleaseOutcome(value)
        elif key in ("digest", "url"):
            setattr(report, key, "" if value == "-" else value)
        elif key == "cause":
            report.cause = value
        elif key == "now running":
            report.restored_version = value
        elif key == "total":
            break
    return report


class ProductionClient:
    """POSTs a prediction through the service URL for as long as a release runs; counts who answered."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/predict"
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-production-client", daemon=True)

    def __enter__(self) -> ProductionClient:
        if self.url.startswith("http"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        while not self._stop.is_set():
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with opener.open(request, timeout=5) as response:  # nosec B310 # the local load balancer's URL
                    self.versions.append(str(json.loads(response.read()).get("version", "")))
            except (OSError, ValueError):
                self.versions.append("")
            self._stop.wait(0.02)

    def share(self, version: str) -> str:
        if not self.versions:
            return "-"
        return f"{100 * self.versions.count(version) / len(self.versions):.1f}% of {len(self.versions)}"


_TRAFFIC_BACK = re.compile(r"production traffic back on the previous version (?:in )?(\d+\.\d+)s")


def traffic_back(output: str) -> str:
    """The time from a failed decision to all production traffic back, as the release said it."""
    found = _TRAFFIC_BACK.findall(output)
    return f"{found[-1]}s" if found else "-"


def train(model_dir: Path, version: str, features: str, echo: Echo, shuffle: bool = False) -> None:
    out = subprocess.run(
        [sys.executable, "train.py", "--version", version, "--features", features, "--out", "model.json"]
        + (["--shuffle-labels"] if shuffle else []),
        cwd=model_dir,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise PipelineError(
            f"training {version} failed: {out.stderr.strip().splitlines()[-1:]}",
            hint="Install the dev extra (scikit-learn).",
        )
    echo(f"  {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else f'trained {version}'}")


def _json(ran: Ran) -> Any:
    """The JSON document a `--output json` command printed after its notices."""
    start = min(i for i in (ran.output.find("{"), ran.output.find("[")) if i >= 0)
    return json.loads(ran.output[start:])


def run_steps(project: Path, echo: Echo) -> int:
    """The demo inside `pipeline local exec`: the same commands a user types, in order."""

    def pipeline(*args: str) -> Ran:
        return run_command(["pipeline", *args], echo, project)

    def must(ran: Ran) -> Ran:
        if ran.code != 0:
            raise PipelineError(f"the demo stopped: {ran.error or f'exit {ran.code}'}", hint="Read the output above.")
        return ran

    reports: list[ReleaseReport] = []
    figures: list[tuple[str, str]] = []  # per release: the new version's share of production, traffic back
    echo("==> bootstrap: registry and ci-access stacks")
    must(pipeline("bootstrap"))
    for tag, features, shuffle in VERSIONS:
        echo(f"==> release {tag} to {ENVIRONMENT}")
        train(project / MODEL_DIR, tag.lstrip("v"), features, echo, shuffle)
        with ProductionClient(next((r.url for r in reversed(reports) if r.url), "")) as production:
            ran = pipeline("release", tag, "--env", ENVIRONMENT)
        figures.append((production.share(tag.lstrip("v")), traffic_back(ran.output)))
        report = parse_report(ran.output)
        if report is None:
            must(ran)  # no report: the release never started
            raise PipelineError(f"release {tag} printed no report", hint="Read the output above.")
        reports.append(report)
        if ran.code != 0:
            echo(f"  release {tag} failed as the demo intends: {ran.error.removeprefix('error: ')}")
    echo(f"==> rollback of {ENVIRONMENT} to 1.0.0, on request")
    with ProductionClient(next((r.url for r in reversed(reports) if r.url), "")) as production:
        ran = must(pipeline("rollback", "1.0.0", "--env", ENVIRONMENT))
    figures.append((production.share("1.0.0"), traffic_back(ran.output)))
    rolled = parse_report(ran.output)
    assert rolled is not None  # nosec B101 # a successful rollback prints its report
    reports.append(rolled)
    entries = _json(must(pipeline("history", "--env", ENVIRONMENT, "--output", "json")))
    now = _json(must(pipeline("status", "--env", ENVIRONMENT, "--output", "json")))
    echo("")
    echo(f"history of {ENVIRONMENT} (GitHub deployments, newest first)")
    for e in entries:
        echo(f"  {e['version']:<8} {e['state']:<10} {e['digest'][:19]}...")
    echo("")
    echo(
        f"running now: {now['version']} ({now['digest'][:19]}...), {now['running']}/{now['desired']} tasks, {now['url']}"
    )
    echo("")
    echo(f"{'':<20}" + "".join(f"{p:>9}" for p in PHASES) + f"{'total':>9}  outcome")
    for r in reports:
        seconds = {p.name: p.seconds for p in r.phases}
        cells = "".join(f"{seconds[p]:>8.1f}s" if p in seconds else f"{'-':>9}" for p in PHASES)
        echo(f"{r.kind + ' ' + r.version:<20}{cells}{r.seconds:>8.1f}s  {r.outcome.value}")
    echo("")
    echo(f"{'':<20}{'strategy':>10}{'new version served':>26}{'traffic back':>14}  decision")
    for r, (share, back) in zip(reports, figures, strict=True):
        cause = r.cause.split(":")[0] if r.cause else r.outcome.value
        if "Circuit Breaker" in r.cause:
            cause = "circuit breaker: its tasks failed their health checks"
        echo(f"{r.kind + ' ' + r.version:<20}{'canary':>10}{share:>26}{back:>14}  {cause}")
    rolled_back = {r.version for r in reports if r.outcome is ReleaseOutcome.ROLLED_BACK}
    wrong_unseen = figures[3][0].startswith("0.0%")  # v1.3.0 served no production request
    return 0 if now["version"] == "1.0.0" and {"1.2.0", "1.3.0"} <= rolled_back and wrong_unseen else 1


def _main() -> int:
    echo: Echo = lambda line: print(line, flush=True)  # noqa: E731
    try:
        return run_steps(Path.cwd(), echo)
    except PipelineError as error:
        echo(f"error: {error.message}")
        return 1


if __name__ == "__main__":
    sys.exit(_main())
