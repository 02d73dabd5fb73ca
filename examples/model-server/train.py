"""Train the example iris classifier and write a stdlib-servable artifact.

    python train.py --version 1.2.0 --out model.json

The artifact holds everything serving needs as plain numbers (scaler mean/scale,
coefficients, intercepts), so `server.py` predicts with the standard library only
(the image's Python has no numpy). Training is deterministic: a fixed random state,
no timestamps, sorted JSON keys, so one version trains to the same bytes.

`--features` picks and orders the columns the model is trained on. The default is
the canonical order clients send; a different order trains a model that answers
every request with wrong labels (see README "A release that fails only where it
is deployed").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

ARTIFACT_FORMAT = 1
RANDOM_STATE = 0
# Stable, URL- and env-var-friendly names for the dataset's "sepal length (cm)" style columns.
FEATURES = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Fitted:
    """A trained model with the data it saw, for checks that need sklearn itself."""

    features: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    scaler: StandardScaler
    model: LogisticRegression

    def sklearn_labels(self) -> list[str]:
        return [self.class_names[i] for i in self.model.predict(self.scaler.transform(self.x))]

    def sklearn_probabilities(self) -> np.ndarray:
        return self.model.predict_proba(self.scaler.transform(self.x))


def fit(features: Sequence[str] = FEATURES, shuffle_labels: bool = False) -> Fitted:
    """Fit scaler + multinomial logistic regression on iris, columns in the given order.

    `shuffle_labels` trains on labels permuted (a fixed seed): a model that loads, passes every health
    check and answers quickly, with answers no better than chance (what the model gate catches)."""
    unknown = [name for name in features if name not in FEATURES]
    if unknown or not features or len(set(features)) != len(features):
        raise ValueError(f"features must be distinct names from {', '.join(FEATURES)}; got {list(features)}")
    data = load_iris()
    x = data.data[:, [FEATURES.index(name) for name in features]]
    y = data.target
    if shuffle_labels:
        y = np.random.default_rng(RANDOM_STATE).permutation(y)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=1000, random_state=RANDOM_STATE).fit(scaler.transform(x), y)
    return Fitted(tuple(features), x, y, tuple(str(n) for n in data.target_names), scaler, model)


def to_artifact(fitted: Fitted, version: str) -> dict[str, Any]:
    """The JSON-ready artifact: plain lists of floats, no numpy, nothing time-dependent."""
    if not VERSION_RE.match(version):
        raise ValueError(f"version {version!r} is not MAJOR.MINOR.PATCH")
    return {
        "format": ARTIFACT_FORMAT,
        "version": version,
        "feature_names": list(fitted.features),
        "class_names": list(fitted.class_names),
        "preprocessing": {
            "kind": "standardize",
            "mean": _floats(fitted.scaler.mean_),
            "scale": _floats(fitted.scaler.scale_),
        },
        "model": {
            "kind": "multinomial_logistic_regression",
            "coef": [_floats(row) for row in fitted.model.coef_],
            "intercept": _floats(fitted.model.intercept_),
        },
        "training": {
            "dataset": "sklearn.datasets.load_iris",
            "rows": int(fitted.x.shape[0]),
            "random_state": RANDOM_STATE,
            "sklearn_version": sklearn.__version__,
            "train_accuracy": round(float(fitted.model.score(fitted.scaler.transform(fitted.x), fitted.y)), 6),
        },
    }


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def dumps(artifact: dict[str, Any]) -> str:
    """The artifact's canonical text: sorted keys, fixed separators, trailing newline."""
    return json.dumps(artifact, sort_keys=True, indent=2, separators=(",", ": ")) + "\n"


def served_mismatches(fitted: Fitted, artifact: dict[str, Any]) -> int:
    """Predict the training data with the serving code; count labels that differ from sklearn."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from server import Model  # the exact code the image serves with

    served = Model.from_dict(artifact)
    got = [label for label, _ in served.predict(fitted.x.tolist())]
    return sum(1 for a, b in zip(fitted.sklearn_labels(), got, strict=False) if a != b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="model version, e.g. 1.2.0")
    parser.add_argument("--out", type=Path, default=Path("model.json"), help="artifact path (default: model.json)")
    parser.add_argument(
        "--features",
        default=",".join(FEATURES),
        help="comma-separated training columns, in order (default: %(default)s)",
    )
    parser.add_argument(
        "--shuffle-labels",
        action="store_true",
        help="train on permuted labels: a healthy but wrong model (for the model gate's demo)",
    )
    args = parser.parse_args(argv)

    try:
        fitted = fit([f.strip() for f in args.features.split(",") if f.strip()], args.shuffle_labels)
        artifact = to_artifact(fitted, args.version)
    except ValueError as exc:
        parser.error(str(exc))
    mismatches = served_mismatches(fitted, artifact)
    if mismatches:
        print(f"error: the stdlib predictor disagrees with sklearn on {mismatches} rows", file=sys.stderr)
        return 1
    args.out.write_text(dumps(artifact), encoding="utf-8")
    accuracy = artifact["training"]["train_accuracy"]
    print(
        f"wrote {args.out}: version {args.version}, features {','.join(artifact['feature_names'])}, "
        f"train accuracy {accuracy:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
