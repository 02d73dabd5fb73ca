"""Get the build context ready: train the model to ONNX, and download the image's wheels.

    python prepare.py                 # both: train (scikit-learn + skl2onnx), then the wheels
    python prepare.py --wheels-only   # the committed model.onnx as is; only the wheels
    python prepare.py --train-only    # retrain model.onnx; no download

Training runs here, on the host, where scikit-learn and skl2onnx are: the image only ever sees
the ONNX file and runs it with onnxruntime (no scikit-learn or scipy in the image, which would
double its size). The wheels land in `wheels/` (git-ignored) because the image build cannot
reach a package index; the Dockerfile installs them with `pip install --no-index`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model.onnx"
WHEELS = HERE / "wheels"
REQUIREMENTS = HERE / "requirements.txt"
# pip itself, run from its wheel inside the build: the local Debian base has no pip.
PIP = "pip==26.3"
RANDOM_STATE = 0
FEATURES = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")
# Stable opsets that every onnxruntime of the last few years runs.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# The base images' Python and platform: CPython 3.11 (Debian bookworm's python3) on glibc >= 2.28.
PYTHON_VERSION = "3.11"
PLATFORMS = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "aarch64": ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
}


def train(out: Path = MODEL) -> float:
    """Fit scaler + logistic regression on iris, convert to ONNX, check it agrees; returns accuracy."""
    import numpy as np
    import onnx
    import sklearn
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris()
    x = data.data.astype(np.float32)  # ONNX's FloatTensorType: train on what is served
    labels = np.array([str(data.target_names[i]) for i in data.target])  # string labels in the graph
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=RANDOM_STATE))
    model.fit(x, labels)
    accuracy = float(model.score(x, labels))
    # zipmap=False: probabilities as one float tensor (rows x classes), not a list of dicts.
    onx = to_onnx(model, x[:1], target_opset=TARGET_OPSET, options={"zipmap": False})
    onx.doc_string = "iris classifier: StandardScaler + LogisticRegression (scikit-learn), via skl2onnx"
    metadata = {
        "feature_names": ",".join(FEATURES),
        "class_names": ",".join(str(c) for c in model.classes_),
        "trained_with": f"scikit-learn {sklearn.__version__}",
        "train_accuracy": f"{accuracy:.6f}",
    }
    for key, value in metadata.items():
        onx.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(onx)
    mismatches = _onnx_mismatches(onx.SerializeToString(), x, model.predict(x))
    if mismatches:
        raise SystemExit(f"the ONNX model disagrees with scikit-learn on {mismatches} of {len(x)} rows; not written")
    out.write_bytes(onx.SerializeToString())
    return accuracy


def _onnx_mismatches(model_bytes: bytes, x: object, expected: Sequence[str]) -> int:
    """Run the converted model with onnxruntime (what the image serves with) and count label differences."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed here: the converted model was not cross-checked", file=sys.stderr)
        return 0
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    got, _ = session.run(None, {session.get_inputs()[0].name: x})
    return sum(1 for a, b in zip(expected, got, strict=True) if str(a) != str(b))


def pinned(requirements: Path = REQUIREMENTS) -> list[str]:
    """The `name==version` lines of requirements.txt, plus pip itself."""
    lines = [line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines()]
    return [line for line in lines if line] + [PIP]


def missing_wheels(wanted: Sequence[str], wheels: Path = WHEELS) -> list[str]:
    """Pins with no matching wheel file in `wheels`."""
    have = {_key(*p.name.split("-")[:2]) for p in wheels.glob("*.whl")} if wheels.is_dir() else set()
    return [pin for pin in wanted if _key(*pin.split("==")) not in have]


def _key(name: str, version: str) -> str:
    """`name-version` as a wheel's filename spells it (PEP 427: runs of -_. become _)."""
    return re.sub(r"[-_.]+", "_", name).lower() + "-" + version


def download_wheels(wheels: Path = WHEELS, arch: str = "x86_64", python_version: str = PYTHON_VERSION) -> bool:
    """Download every pinned wheel for the image's Python; False when all were there already."""
    wanted = pinned()
    if not missing_wheels(wanted, wheels):
        return False
    wheels.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python_version.replace(".", "")
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--no-deps",  # exact pins, nothing resolved behind our back
        "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
        *(arg for platform in PLATFORMS[arch] for arg in ("--platform", platform)),
        "--dest", str(wheels), *wanted,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    still = missing_wheels(wanted, wheels)
    if still:
        raise SystemExit(f"pip download left these without a wheel: {', '.join(still)}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--wheels-only", action="store_true", help="keep model.onnx; only download the wheels")
    which.add_argument("--train-only", action="store_true", help="only retrain model.onnx")
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="where the wheels go (default: wheels/)")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64", help="the image's CPU architecture")
    args = parser.parse_args(argv)
    if not args.wheels_only:
        accuracy = train()
        print(f"wrote {MODEL.name} ({MODEL.stat().st_size} bytes), train accuracy {accuracy:.3f}")
    if not args.train_only:
        fetched = download_wheels(args.wheels, args.arch)
        count = len(list(args.wheels.glob("*.whl")))
        print(f"{'downloaded' if fetched else 'already had'} {count} wheels in {args.wheels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
