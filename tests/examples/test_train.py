"""train.py: the stdlib predictor agrees with scikit-learn, and training is reproducible."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-server"
sys.path.insert(0, str(EXAMPLE))

import train  # noqa: E402 - the example is a folder of scripts, found on sys.path as it runs
from server import Model, ModelError, Settings  # noqa: E402

PETAL_FIRST = ["petal_length_cm", "petal_width_cm", "sepal_length_cm", "sepal_width_cm"]


@pytest.fixture(scope="module")
def fitted() -> train.Fitted:
    return train.fit()


def test_stdlib_predictor_matches_sklearn_on_the_whole_dataset(fitted: train.Fitted) -> None:
    served = Model.from_dict(train.to_artifact(fitted, "1.2.0"))

    results = served.predict(fitted.x.tolist())

    assert [label for label, _ in results] == fitted.sklearn_labels()
    expected = fitted.sklearn_probabilities()
    for (_, probs), reference in zip(results, expected, strict=False):
        assert probs == pytest.approx(reference.tolist(), abs=1e-9)


def test_the_model_is_a_real_one(fitted: train.Fitted) -> None:
    assert train.to_artifact(fitted, "1.2.0")["training"]["train_accuracy"] > 0.95


def test_the_same_version_trains_the_same_bytes() -> None:
    assert train.dumps(train.to_artifact(train.fit(), "1.2.0")) == train.dumps(train.to_artifact(train.fit(), "1.2.0"))


def test_the_committed_artifact_is_what_train_py_writes(fitted: train.Fitted) -> None:
    committed = json.loads((EXAMPLE / "model.json").read_text())
    fresh = train.to_artifact(fitted, "1.2.0")
    # Another scikit-learn release may differ in the last digits; the model must not.
    committed["training"].pop("sklearn_version")
    fresh["training"].pop("sklearn_version")
    assert _rounded(committed) == _rounded(fresh)


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def test_cli_writes_sorted_json_with_the_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"

    assert train.main(["--version", "2.0.1", "--out", str(out)]) == 0

    text = out.read_text()
    artifact = json.loads(text)
    assert artifact["version"] == "2.0.1"
    assert artifact["class_names"] == ["setosa", "versicolor", "virginica"]
    assert text == json.dumps(artifact, sort_keys=True, indent=2) + "\n"
    assert "train accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["--version", "latest"], ["--version", "1.2.0", "--features", "petal_length_cm,colour"]]
)
def test_cli_rejects_bad_arguments(tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        train.main([*argv, "--out", str(tmp_path / "m.json")])
    assert exc.value.code == 2
    assert not (tmp_path / "m.json").exists()


def test_features_option_trains_the_petal_first_model(tmp_path: Path) -> None:
    out = tmp_path / "bad.json"
    assert train.main(["--version", "1.2.0", "--out", str(out), "--features", ",".join(PETAL_FIRST)]) == 0
    model = Model.from_dict(json.loads(out.read_text()))

    assert model.feature_names == tuple(PETAL_FIRST)
    model.check(Settings())  # default settings: nothing to contradict, it would pass a pre-push check
    canonical = Settings(expected_features=train.FEATURES)
    with pytest.raises(ModelError, match="trained on features petal_length_cm.*MODEL_EXPECTED_FEATURES"):
        model.check(canonical)
    # Fed a canonical-order setosa row, it answers confidently and wrongly.
    assert model.predict([[5.1, 3.5, 1.4, 0.2]])[0][0] != "setosa"
