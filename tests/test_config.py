from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError, ConfigProblems
from tests.conftest import copy_golden_set


def test_project_settings_load(settings: config.Settings) -> None:
    assert settings.app.name == "iris-classifier"
    assert settings.environment_names == ("staging", "production")
    staging = settings.environment("staging")
    assert staging.service.desired_count == 1 and staging.service.max_count == 3
    assert not staging.https
    production = settings.environment("production")
    assert production.https and production.service.desired_count == 2


def test_settings_are_frozen(settings: config.Settings) -> None:
    with pytest.raises(AttributeError):
        settings.app.name = "other"  # type: ignore[misc]


def test_derived_rollout_knobs(settings: config.Settings) -> None:
    s = settings.environment("production").service
    assert s.deregistration_delay == s.request_timeout + s.drain_margin
    assert s.idle_timeout > s.request_timeout
    assert s.stop_timeout <= 120
    assert s.modeled_rollout_seconds <= 90


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


BAD_VALUES = [
    ("app.name", "Iris_Classifier", "app.name"),
    ("app.region", "mars-1", "app.region"),
    ("app.account", "12345", "app.account"),
    ("app.account", 123456789012, "app.account"),
    ("app.github_repository", "no-slash", "app.github_repository"),
    ("app.colour", "blue", "app.colour"),
    ("service.cpu", 300, "service.cpu"),
    ("service.memory", 8192, "service.memory"),
    ("service.container_port", 70000, "service.container_port"),
    ("service.container_port", "8080", "service.container_port"),
    ("service.min_count", 7, "service.min_count"),
    ("service.desired_count", 9, "service.desired_count"),
    ("service.health_check_path", "health", "service.health_check_path"),
    ("service.health_check_timeout", 10, "service.health_check_timeout"),
    ("service.log_retention_days", 31, "service.log_retention_days"),
    ("service.healthy_threshold", True, "service.healthy_threshold"),
    ("image.builder", "kaniko", "image.builder"),
    ("smoke.request", "{not json", "smoke.request"),
    ("environments.production.certificate_arn", "arn:aws:acm:oops", "environments.production.certificate_arn"),
    ("environments.staging.max_count", 0, "environments.staging.max_count"),
    ("environments.staging.min_count", 4, "environments.staging.min_count"),
    ("service.alarm_latency_p99", 0, "service.alarm_latency_p99"),
    ("environments.staging.strategy", "canery", "environments.staging.strategy"),
    ("environments.staging.region", "moon", "environments.staging.region"),
    ("environments.staging.build", "yes", "environments.staging.build"),
    ("environments.staging.vpc_cidr", "10.0.0.0/8", "environments.staging.vpc_cidr"),
    ("environments.staging.vpc_id", "vpc-0123456789abcdef0", "environments.staging.vpc_cidr"),
    ("environments.staging.replicas", 2, "environments.staging.replicas"),
    ("environments.staging.variables", {"BAD-NAME": "x"}, "environments.staging.variables.BAD-NAME"),
    ("environments.staging.variables", {"LIMIT": 3}, "environments.staging.variables.LIMIT"),
]


@pytest.mark.parametrize(("dotted", "value", "key"), BAD_VALUES, ids=[f"{d}={v!r}" for d, v, _ in BAD_VALUES])
def test_bad_values_name_the_key(raw_settings: dict[str, Any], dotted: str, value: Any, key: str) -> None:
    with pytest.raises(ConfigProblems) as caught:
        config.parse(_set(raw_settings, dotted, value))
    assert key in caught.value.keys
    line = caught.value.one_line()
    assert key in line and "\n" not in line
    assert all(p.hint for p in caught.value.problems), "every settings error says how to fix it"
    assert caught.value.exit_code == 2


def test_memory_hint_lists_what_fargate_offers(raw_settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="With cpu 512 use 1024 to 4096 MiB"):
        config.parse(_set(raw_settings, "service.memory", 512))


def test_existing_network_needs_two_subnets_each(raw_settings: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_settings)
    del raw["environments"]["staging"]["vpc_cidr"]
    raw["environments"]["staging"].update(
        vpc_id="vpc-0123456789abcdef0", public_subnet_ids=["subnet-01234567"], private_subnet_ids=[]
    )
    with pytest.raises(ConfigError) as caught:
        config.parse(raw)
    assert caught.value.key == "environments.staging.public_subnet_ids"
    raw["environments"]["staging"].update(
        public_subnet_ids=["subnet-01234567", "subnet-89abcdef"],
        private_subnet_ids=["subnet-11111111", "subnet-22222222"],
    )
    env = config.parse(raw).environment("staging")
    assert not env.network.creates_vpc


def test_unknown_environment_lists_the_known_ones(settings: config.Settings) -> None:
    with pytest.raises(ConfigError, match="staging, production"):
        settings.environment("qa")


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")
    broken = tmp_path / "pipeline.toml"
    broken.write_text("[app\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(broken)


def _problems(raw: dict[str, Any], root: Path = Path(".")) -> ConfigProblems:
    with pytest.raises(ConfigProblems) as caught:
        config.parse(raw, root=root)
    return caught.value


def test_every_problem_is_reported_at_once_on_one_line(raw_settings: dict[str, Any]) -> None:
    raw = _set(raw_settings, "service.cpu", 300)
    raw = _set(raw, "environments.staging.max_count", 0)
    raw = _set(raw, "app.region", "mars-1")
    caught = _problems(raw)
    assert caught.keys == ("app.region", "service.cpu", "environments.staging.max_count")
    line = caught.one_line()
    assert line.startswith("pipeline.toml: 3 problems: app.region: 'mars-1' is not an AWS region. Use a region code")
    assert "; service.cpu: Fargate offers no task with 300 cpu units. Use one of 256, 512" in line
    assert line.endswith("; environments.staging.max_count: 0 is below 1. Allow at least 1 task.")
    assert "\n" not in line and caught.exit_code == 2


def test_one_problem_reads_as_before(raw_settings: dict[str, Any]) -> None:
    caught = _problems(_set(raw_settings, "service.memory", 999))
    assert caught.key == "service.memory"
    assert caught.one_line() == (
        "service.memory: Fargate offers no 512 cpu task with 999 MiB. With cpu 512 use 1024 to 4096 MiB in steps of 1024."
    )


def test_a_problem_an_environment_inherits_is_reported_once(raw_settings: dict[str, Any]) -> None:
    assert _problems(_set(raw_settings, "service.log_retention_days", 31)).keys == ("service.log_retention_days",)


def test_a_wrong_type_is_not_also_judged_as_a_value(raw_settings: dict[str, Any]) -> None:
    # min_count "2" is one problem, not also "desired_count outside min_count..max_count".
    assert _problems(_set(raw_settings, "service.min_count", "2")).keys == ("service.min_count",)


def test_the_cli_reports_every_problem_on_one_line_exit_2(tmp_path: Path, project_root: Path) -> None:
    text = (project_root / "pipeline.toml").read_text()
    text = text.replace("cpu = 512 ", "cpu = 300 ").replace('region = "us-east-1"', 'region = "mars-1"')
    (tmp_path / "pipeline.toml").write_text(text.replace('context = "examples/model-server"', 'context = "."'))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")  # check validates the image paths too
    copy_golden_set(tmp_path)
    result = _cli("check", "--config", str(tmp_path / "pipeline.toml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'pipeline.toml'}: 2 problems: app.region: 'mars-1'")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True)


# --- did you mean ---------------------------------------------------------------------------------

TYPOS = [
    ("service.contaner_port", 8080, "service.contaner_port", "Did you mean container_port?"),
    ("environments.staging.desired_cont", 1, "environments.staging.desired_cont", "Did you mean desired_count?"),
    ("enviroments", {"qa": {}}, "enviroments", "Did you mean environments?"),
    ("servce", {"cpu": 512}, "servce", "Did you mean service?"),
    ("environments.staging.variabels", {"A": "b"}, "environments.staging.variabels", "Did you mean variables?"),
    ("image.buidler", "buildah", "image.buidler", "Did you mean builder?"),
    ("image.builder", "buildha", "image.builder", "Did you mean buildah?"),
    ("service.builder", "buildah", "service.builder", "builder belongs in [image]."),
    ("service.region", "eu-west-1", "service.region", "region belongs in [app] or [environments.NAME]."),
    ("app.cpu", 512, "app.cpu", "cpu belongs in [service] or [environments.NAME]."),
]


@pytest.mark.parametrize(("dotted", "value", "key", "hint"), TYPOS, ids=[t[0] for t in TYPOS])
def test_did_you_mean_by_edit_distance(
    raw_settings: dict[str, Any], dotted: str, value: Any, key: str, hint: str
) -> None:
    caught = _problems(_set(raw_settings, dotted, value))
    assert caught.keys == (key,)
    assert caught.hint == hint


def test_an_unknown_table_is_called_a_table(raw_settings: dict[str, Any]) -> None:
    assert _problems(_set(raw_settings, "servce", {"cpu": 512})).problem == "unknown table"
    assert _problems(_set(raw_settings, "service.contaner_port", 1)).problem == "unknown key"


def test_no_close_match_lists_the_known_keys(raw_settings: dict[str, Any]) -> None:
    assert (
        _problems(_set(raw_settings, "smoke.zzz", 1)).hint == "Known keys: expect_keys, method, path, request, timeout."
    )


def test_unknown_environment_suggests_the_closest(settings: config.Settings) -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'stagin'\. Did you mean staging\?"):
        settings.environment("stagin")


# --- found when the README was checked against the code -------------------------------------------


def test_a_file_that_is_not_utf8_is_one_line_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "pipeline.toml"
    file.write_bytes('[app]\nname = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 17\)\. TOML files are UTF-8"):
        config.load(file)
    result = _cli("check", "--config", str(file))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_byte_order_mark_is_named_with_its_fix(tmp_path: Path, project_root: Path) -> None:
    # tomllib refuses a BOM as "Invalid statement (at line 1, column 1)", which does not say why.
    file = tmp_path / "pipeline.toml"
    file.write_bytes(b"\xef\xbb\xbf" + (project_root / "pipeline.toml").read_bytes())
    copy_golden_set(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config.load(file)
    assert caught.value.one_line() == (
        f"{file}: starts with a UTF-8 byte order mark (BOM), which TOML parsers such as Python's tomllib refuse. "
        "Save it as UTF-8 without BOM."
    )
    result = _cli("check", "--config", str(file))
    assert result.returncode == 2 and "BOM" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_folder_given_as_the_settings_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        config.load(tmp_path)


@pytest.mark.parametrize("number", ["nan", "+inf", "-inf"])
def test_non_finite_floats_are_refused(tmp_path: Path, project_root: Path, number: str) -> None:
    text = (
        (project_root / "pipeline.toml").read_text().replace("alarm_latency_p99 = 5.0", f"alarm_latency_p99 = {number}")
    )
    assert number in text
    (tmp_path / "pipeline.toml").write_text(text)
    copy_golden_set(tmp_path)
    with pytest.raises(ConfigProblems) as caught:
        config.load(tmp_path / "pipeline.toml")
    assert caught.value.keys == ("service.alarm_latency_p99",)
    assert "must be a finite number" in caught.value.one_line()


@pytest.mark.parametrize("name", ["PORT", "MODEL_VERSION"])
def test_variables_the_template_sets_are_refused(raw_settings: dict[str, Any], name: str) -> None:
    caught = _problems(_set(raw_settings, f"environments.staging.variables.{name}", "9000"))
    assert caught.keys == (f"environments.staging.variables.{name}",)
    if name == "PORT":
        assert caught.one_line() == (
            "environments.staging.variables.PORT: PORT is set from container_port. "
            "Remove it; set environments.staging.container_port instead."
        )


# --- image paths stay inside the repository (issue 15) --------------------------------------------


@pytest.fixture()
def repository(tmp_path: Path) -> Path:
    """A repository folder with a model server inside and a folder beside it (outside)."""
    (tmp_path / "repo" / "server").mkdir(parents=True)
    (tmp_path / "repo" / "server" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "repo" / "link-out").symlink_to(tmp_path / "outside")
    (tmp_path / "repo" / "server" / "Dockerfile.out").symlink_to(tmp_path / "outside" / "Dockerfile")
    (tmp_path / "repo" / "link-in").symlink_to(tmp_path / "repo" / "server")
    copy_golden_set(tmp_path / "repo")
    return tmp_path / "repo"


ESCAPES = [
    ("image.context", "/etc", "image.context", "'/etc' is an absolute path"),
    ("image.context", "..", "image.context", "'..' leaves the repository"),
    ("image.context", "server/../../outside", "image.context", "leaves the repository"),
    ("image.context", "link-out", "image.context", "'link-out' leaves the repository"),
    ("image.dockerfile", "/etc/passwd", "image.dockerfile", "absolute path"),
    ("image.dockerfile", "../../outside/Dockerfile", "image.dockerfile", "leaves the repository"),
    ("image.dockerfile", "Dockerfile.out", "image.dockerfile", "'Dockerfile.out' leaves the repository"),
]


@pytest.mark.parametrize(("dotted", "value", "key", "problem"), ESCAPES, ids=[f"{d}={v}" for d, v, _, _ in ESCAPES])
def test_image_paths_that_leave_the_repository_are_refused(
    raw_settings: dict[str, Any], repository: Path, dotted: str, value: str, key: str, problem: str
) -> None:
    raw = _set(_set(raw_settings, "image.context", "server"), dotted, value)
    caught = _problems(raw, root=repository)
    assert caught.keys == (key,)
    assert problem in caught.one_line() and "Use a relative path inside the repository" in caught.one_line()


UNRESOLVABLE = [
    ("image.context", "x\0y", "'x\\x00y' contains a NUL character. Remove it"),
    ("image.context", "loop", "'loop' is a symlink loop. Point it at a real file or folder"),
    ("image.dockerfile", "x\0y", "'x\\x00y' contains a NUL character"),
    ("image.dockerfile", "loop", "'loop' is a symlink loop"),
]


@pytest.mark.parametrize(("key", "value", "problem"), UNRESOLVABLE, ids=[f"{k}={v!r}" for k, v, _ in UNRESOLVABLE])
def test_image_paths_no_file_can_have_are_one_problem(
    raw_settings: dict[str, Any], repository: Path, key: str, value: str, problem: str
) -> None:
    # Each was a traceback: ValueError "embedded null byte", RuntimeError "Symlink loop".
    (repository / "loop").symlink_to("loop")
    (repository / "server" / "loop").symlink_to("loop")
    caught = _problems(_set(_set(raw_settings, "image.context", "server"), key, value), root=repository)
    assert caught.keys == (key,)
    assert problem in caught.one_line()


def test_image_files_must_exist_when_asked(raw_settings: dict[str, Any], repository: Path) -> None:
    raw = _set(raw_settings, "image.context", "server")
    assert config.parse(raw, root=repository, image_files=True).image.context == "server"
    for context, dockerfile, key, problem in (
        ("server", "nope", "image.dockerfile", "'nope' does not exist in image.context 'server'. Point it at"),
        (".", "server", "image.dockerfile", "'server' is not a file in image.context '.'"),
        ("gone", "Dockerfile", "image.context", "'gone' does not exist. Point it at the model server's build"),
        ("server/Dockerfile", ".", "image.context", "'server/Dockerfile' is not a folder"),
    ):
        wrong = _set(_set(raw, "image.context", context), "image.dockerfile", dockerfile)
        # Promoting, rolling back and synthesizing templates need no Dockerfile: only `check` asks.
        assert config.parse(wrong, root=repository).image.dockerfile == dockerfile
        caught = _problems_with_files(wrong, repository)
        assert caught.keys == (key,), "a missing context is not also a missing Dockerfile"
        assert problem in caught.one_line()


def _problems_with_files(raw: dict[str, Any], root: Path) -> ConfigProblems:
    with pytest.raises(ConfigProblems) as caught:
        config.parse(raw, root=root, image_files=True)
    return caught.value


def test_loading_with_image_files_reports_a_missing_dockerfile_with_the_rest(
    repository: Path, project_root: Path
) -> None:
    text = (
        (project_root / "pipeline.toml").read_text().replace('context = "examples/model-server"', 'context = "server"')
    )
    file = repository / "pipeline.toml"
    file.write_text(
        text.replace('dockerfile = "Dockerfile"', 'dockerfile = "nope"').replace("memory = 1024", "memory = 999")
    )
    with pytest.raises(ConfigProblems) as caught:
        config.load(file, image_files=True)
    assert caught.value.keys == ("image.dockerfile", "service.memory")
    with pytest.raises(ConfigProblems) as caught:
        config.load(file)
    assert caught.value.keys == ("service.memory",)


def test_pipeline_check_refuses_a_missing_dockerfile(tmp_path: Path, project_root: Path) -> None:
    text = (project_root / "pipeline.toml").read_text().replace('context = "examples/model-server"', 'context = "."')
    (tmp_path / "pipeline.toml").write_text(text.replace('dockerfile = "Dockerfile"', 'dockerfile = "nope"'))
    copy_golden_set(tmp_path)
    result = _cli("check", "--config", str(tmp_path / "pipeline.toml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: image.dockerfile: 'nope' does not exist in image.context '.'")


@pytest.mark.parametrize(
    ("context", "dockerfile"),
    [("server", "Dockerfile"), ("link-in", "../server/Dockerfile"), (".", "server/Dockerfile")],
)
def test_image_paths_inside_the_repository_are_accepted(
    raw_settings: dict[str, Any], repository: Path, context: str, dockerfile: str
) -> None:
    raw = _set(_set(raw_settings, "image.context", context), "image.dockerfile", dockerfile)
    assert config.parse(raw, root=repository).image.context == context


def test_the_readme_example_is_what_check_prints(tmp_path: Path, project_root: Path) -> None:
    text = (project_root / "pipeline.toml").read_text()
    text = text.replace('region = "us-east-1"', 'region = "mars-1"').replace("\ncontainer_port =", "\ncontaner_port =")
    (tmp_path / "pipeline.toml").write_text(text.replace('context = "examples/model-server"', 'context = "."'))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")  # check validates the image paths too
    copy_golden_set(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pipeline", "check"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    readme = (project_root / "README.md").read_text().splitlines()
    assert result.stderr.strip() in readme, result.stderr


@pytest.mark.parametrize(("value", "seconds"), [(None, 5.0), ("", 5.0), ("0.5", 0.5), (" 2 ", 2.0), ("300", 300.0)])
def test_poll_seconds_from_the_environment(value: str | None, seconds: float) -> None:
    environ = {} if value is None else {"PIPELINE_POLL_SECONDS": value}
    assert config.poll_seconds(environ) == seconds


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "301"])
def test_a_bad_poll_interval_is_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.poll_seconds({"PIPELINE_POLL_SECONDS": value})
    assert caught.value.one_line().startswith(f"PIPELINE_POLL_SECONDS: {value!r} is not a number of seconds")


def test_the_cli_refuses_a_bad_poll_interval_exit_2(project_root: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.update(PIPELINE_POLL_SECONDS="abc", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "status", "--env", "staging"],
        cwd=project_root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: PIPELINE_POLL_SECONDS: 'abc' is not a number of seconds")


# --- rollout_timeout against the modeled rollout ---------------------------------------------------


def test_a_rollout_timeout_below_the_modeled_rollout_plus_bake_is_refused_once_where_it_is_set(
    raw_settings: dict[str, Any],
) -> None:
    settings = config.parse(raw_settings)
    staging = settings.environment("staging")
    assert staging.rollout_floor_seconds == staging.service.modeled_rollout_seconds + config.ALARM_BAKE_SECONDS
    # Inherited by every environment, reported once: for the one with the highest floor.
    highest = max(settings.environments, key=lambda e: e.rollout_floor_seconds)
    floor = highest.rollout_floor_seconds
    caught = _problems(_set(raw_settings, "service.rollout_timeout", floor - 1))
    assert caught.keys == ("service.rollout_timeout",)
    assert caught.one_line() == (
        f"service.rollout_timeout: {floor - 1} is below {highest.name}'s rollout floor of {floor} s (modeled rollout "
        f"{highest.service.modeled_rollout_seconds} s: warmup + health_check_interval x healthy_threshold + drain, "
        f"plus bake {highest.modeled_bake_seconds} s). Raise it to at least {floor}."
    )
    assert config.parse(_set(raw_settings, "service.rollout_timeout", floor)).environment("staging")


def test_an_environments_own_rollout_timeout_is_judged_with_its_strategys_bake(raw_settings: dict[str, Any]) -> None:
    raw = _set(raw_settings, "environments.staging.strategy", "canary")
    raw = _set(raw, "environments.staging.rollout_timeout", 600)
    caught = _problems(raw)
    assert caught.keys == ("environments.staging.rollout_timeout",)
    staging = config.parse(_set(raw, "environments.staging.rollout_timeout", 900)).environment("staging")
    # canary: the bake after the last shift plus the canary's own bake, in minutes
    assert staging.modeled_bake_seconds == (staging.traffic.bake_minutes + staging.traffic.canary_bake_minutes) * 60
    assert f"{600} is below staging's rollout floor of {staging.rollout_floor_seconds} s" in caught.one_line()


@pytest.mark.parametrize(("environ", "scale", "poll"), [({}, 1.0, 5.0), ({"PIPELINE_TIME_SCALE": "0.02"}, 0.02, 0.1)])
def test_the_time_scale_scales_the_default_poll(environ: dict[str, str], scale: float, poll: float) -> None:
    assert config.time_scale(environ) == scale
    assert config.poll_seconds(environ) == pytest.approx(poll)
    assert config.poll_seconds({**environ, "PIPELINE_POLL_SECONDS": "2"}) == 2.0  # an explicit poll wins


@pytest.mark.parametrize("value", ["abc", "0", "-0.5", "1.5", "nan"])
def test_a_bad_time_scale_is_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.time_scale({"PIPELINE_TIME_SCALE": value})
    assert caught.value.one_line().startswith(f"PIPELINE_TIME_SCALE: {value!r} is not a factor above 0 and at most 1")


# --- one mistake, one problem ---------------------------------------------------------------------


@pytest.mark.parametrize("warmup", [3601, 9223372036854775807])
@pytest.mark.parametrize("table", ["service", "environments.staging"])
def test_a_warmup_beyond_an_hour_is_the_one_problem(raw_settings: dict[str, Any], table: str, warmup: int) -> None:
    # Not also "rollout_timeout: 900 is below staging's rollout floor of 9223372036854776042 s".
    caught = _problems(_set(raw_settings, f"{table}.warmup", warmup))
    assert caught.keys == (f"{table}.warmup",)
    assert caught.one_line().endswith(
        f"{warmup} is outside 0..3600. Use the seconds the model needs to load, at most 3600 (an hour)."
    )
    hour = _set(_set(raw_settings, f"{table}.warmup", 3600), "service.rollout_timeout", 7200)
    assert config.parse(hour).environment("staging").service.warmup == 3600


@pytest.mark.parametrize("value", [False, 0, ""])
def test_a_certificate_arn_that_is_not_an_arn_is_refused_not_read_as_http(
    raw_settings: dict[str, Any], value: Any
) -> None:
    caught = _problems(_set(raw_settings, "environments.production.certificate_arn", value))
    assert caught.keys == ("environments.production.certificate_arn",)
    assert caught.one_line().endswith("Use arn:aws:acm:REGION:ACCOUNT:certificate/ID, or remove the key for HTTP only.")
    if not isinstance(value, str):
        assert f"must be a string (an ACM certificate ARN), got {type(value).__name__} {value!r}" in caught.one_line()
    del raw_settings["environments"]["production"]["certificate_arn"]
    assert not config.parse(raw_settings).environment("production").https  # no key: HTTP only


def test_a_smoke_request_with_method_get_is_refused_not_ignored(raw_settings: dict[str, Any]) -> None:
    assert "request" in raw_settings["smoke"]
    caught = _problems(_set(raw_settings, "smoke.method", "GET"))
    assert caught.keys == ("smoke.request",)
    assert caught.one_line() == (
        'smoke.request: is never sent: a GET has no body. Set method = "POST" to send it, or remove request to GET the path.'
    )
    get = _set(raw_settings, "smoke.method", "GET")
    del get["smoke"]["request"]
    assert config.parse(get).smoke.method == "GET"
    assert config.parse(_set(raw_settings, "smoke.method", "POST")).smoke.method == "POST"


def test_a_missing_settings_file_the_user_named_asks_to_check_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    with pytest.raises(ConfigError) as default:
        config.load()
    assert default.value.one_line().endswith("Run from the project root or set PIPELINE_CONFIG.")
    monkeypatch.setenv("PIPELINE_CONFIG", "typo.toml")
    with pytest.raises(ConfigError) as named:
        config.load()
    assert named.value.one_line() == "typo.toml: settings file not found. Check the path (--config / PIPELINE_CONFIG)."
