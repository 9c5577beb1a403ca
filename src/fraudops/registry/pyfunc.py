"""The bundle as an MLflow pyfunc model: raw transactions in, fraud probability and decision out.

The pyfunc validates and parses its input exactly as the file readers do, and refuses the
whole batch, naming every problem, if any row is invalid: a row is never dropped silently.
"""

import functools
import pickle
import platform
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types.schema import AnyType, ColSpec, Schema
from packaging.requirements import InvalidRequirement, Requirement

from fraudops.data.profiles import DatasetProfile
from fraudops.data.validation import DataValidationError, check_frame
from fraudops.training.bundle import ModelBundle

BUNDLE_ARTIFACT = "bundle"
BUNDLE_FILE = "bundle.pkl"
PROBABILITY_COLUMN = "fraud_probability"
DECISION_COLUMN = "decision"

# Modules a loaded bundle needs, pinned at the versions that wrote it.
_REQUIRED_MODULES = ("fraudops", "mlflow", "numpy", "pandas", "pyarrow", "pydantic", "sklearn")


def score_transactions(bundle: ModelBundle, raw: pd.DataFrame) -> pd.DataFrame:
    """Fraud probability and decision per raw transaction; any invalid row refuses the batch."""
    check = check_frame(raw, bundle.spec.profile, require_label=False)
    if check.has_errors:
        raise DataValidationError(check.report(outcome="rejected"))
    probabilities = bundle.score_frame(check.clean_frame())
    return pd.DataFrame(
        {
            PROBABILITY_COLUMN: probabilities.astype(np.float64),
            DECISION_COLUMN: (probabilities >= bundle.threshold).astype(np.int64),
        }
    )


class FraudDetectorPyfunc(PythonModel):
    """Scores raw transactions with the pickled ModelBundle held in the model's artifacts."""

    def __init__(self) -> None:
        self._bundle: ModelBundle | None = None

    @property
    def bundle(self) -> ModelBundle:
        """The loaded bundle; set once MLflow has called load_context."""
        if self._bundle is None:
            msg = "the model's context is not loaded yet (load it with mlflow.pyfunc.load_model)"
            raise RuntimeError(msg)
        return self._bundle

    def load_context(self, context: PythonModelContext) -> None:
        """Read the bundle from the model's artifacts."""
        self._bundle = read_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self,
        context: PythonModelContext,  # noqa: ARG002 - MLflow's PythonModel signature
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,  # noqa: ARG002 - MLflow's PythonModel signature
    ) -> pd.DataFrame:
        """Columns fraud_probability and decision (1 at or above the threshold), one row each."""
        return score_transactions(self.bundle, model_input)


def write_bundle(bundle: ModelBundle, path: Path) -> Path:
    """Pickle a bundle to a file."""
    with path.open("wb") as out:
        pickle.dump(bundle, out, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def read_bundle(path: Path) -> ModelBundle:
    """Unpickle a bundle written by write_bundle."""
    with path.open("rb") as source:
        # Only ever read from the project's own registry, which the service trusts anyway.
        bundle = pickle.load(source)  # noqa: S301
    if not isinstance(bundle, ModelBundle):
        msg = f"{path} holds a {type(bundle).__name__}, not a ModelBundle"
        raise TypeError(msg)
    return bundle


def raw_input_example(
    frame: pd.DataFrame, profile: DatasetProfile, *, rows: int = 5
) -> pd.DataFrame:
    """Made-up rows in the profile's raw form (timestamps and required columns, no label).

    The registry keeps the example beside the model, readable by whoever reads models: no
    real transaction goes there. Ids, cards and merchants are invented, amounts and places
    fixed, numbers the column's median and categories its most frequent value; times step
    a minute apart from the first row's.
    """
    wanted = (*profile.timestamp_columns, *profile.required_columns)
    columns = [c for c in dict.fromkeys(wanted) if c in frame.columns and c != profile.label]
    real = frame.loc[:, columns].head(rows).reset_index(drop=True)
    count = len(real)
    invented = _invented_columns(profile, count)
    example = pd.DataFrame(index=range(count))
    for column in columns:
        values = real[column]
        if column in invented:
            made = invented[column]
            if pd.api.types.is_numeric_dtype(values.dtype) and isinstance(made[0], str):
                made = [900_000_000 + i for i in range(count)]  # a numeric id column
            elif not pd.api.types.is_numeric_dtype(values.dtype):
                made = [str(value) for value in made]
            example[column] = made
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            steps = pd.to_timedelta(range(count), unit="min")
            example[column] = (values.iloc[0] + steps).strftime("%Y-%m-%d %H:%M:%S")
        elif column in profile.timestamp_columns:
            example[column] = [values.iloc[0]] * count
        elif pd.api.types.is_numeric_dtype(values.dtype):
            example[column] = [frame[column].median()] * count
        else:
            example[column] = [frame[column].mode().iloc[0]] * count
    return example


def _invented_columns(profile: DatasetProfile, count: int) -> dict[str, list[Any]]:
    """Values made up for the columns that identify or locate someone."""
    made: dict[str, list[Any]] = {}
    if profile.transaction_id is not None:
        made[profile.transaction_id] = [f"example-{i}" for i in range(count)]
    if profile.card_id is not None:
        made[profile.card_id] = [4_000_000_000_000_000 + i for i in range(count)]
    if profile.merchant_id is not None:
        made[profile.merchant_id] = [f"example merchant {i}" for i in range(count)]
    made[profile.amount] = [(12.5, 48.0, 130.0, 7.99, 250.0)[i % 5] for i in range(count)]
    if profile.geo is not None:
        geo = profile.geo
        made[geo.lat] = [40.71] * count
        made[geo.long] = [-74.0] * count
        made[geo.merch_lat] = [40.75] * count
        made[geo.merch_long] = [-73.95] * count
    if profile.birth_date is not None:
        made[profile.birth_date] = ["1980-05-17"] * count
    return made


def input_columns(profile: DatasetProfile) -> tuple[str, ...]:
    """The columns a raw transaction may carry for scoring: every known column but the label."""
    ordered = (
        *profile.timestamp_columns,
        *profile.required_columns,
        *profile.never_features,
        *profile.optional,
    )
    return tuple(c for c in dict.fromkeys(ordered) if c != profile.label)


def model_signature(profile: DatasetProfile) -> ModelSignature:
    """Input: the profile's columns, any type, all optional; output: score and decision.

    The readers' validation, not MLflow's schema, decides what is acceptable: ids and
    numbers legitimately come as int or text (cc_num, zip), and a missing column is reported
    like every other problem instead of by MLflow (whose message quotes the data).
    """
    any_type = AnyType()  # type: ignore[no-untyped-call]
    inputs = Schema([ColSpec(any_type, name, required=False) for name in input_columns(profile)])
    outputs = Schema([ColSpec("double", PROBABILITY_COLUMN), ColSpec("long", DECISION_COLUMN)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements(estimator: object) -> list[str]:
    """Pinned requirements of the environment that wrote the model, with the estimator's library."""
    modules = [*_REQUIRED_MODULES, type(estimator).__module__.split(".")[0]]
    distributions = _packages_distributions()
    pins: dict[str, str] = {}
    for module in dict.fromkeys(modules):
        for name in dict.fromkeys(distributions.get(module, [module])):
            try:
                pins[name] = f"{name}=={version(name)}"
            except PackageNotFoundError:
                continue
    return sorted(pins.values())


def environment_mismatches(model_folder: Path) -> list[str]:
    """How this environment differs from the one that wrote a downloaded pyfunc model: each
    requirement of its requirements.txt that the installed version does not satisfy (or
    that is not installed), and another Python minor version. Empty where they agree."""
    mismatches = []
    requirements = model_folder / "requirements.txt"
    lines = requirements.read_text().splitlines() if requirements.is_file() else []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # a path, a URL or an option: nothing to compare
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            mismatches.append(f"{requirement} required, not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            mismatches.append(f"{requirement} required, {installed} installed")
    meta = model_folder / "MLmodel"
    flavors = Model.load(meta).flavors if meta.is_file() else {}
    written_by = str(flavors.get("python_function", {}).get("python_version", ""))
    running = platform.python_version()
    if written_by and written_by.split(".")[:2] != running.split(".")[:2]:
        mismatches.append(f"Python {written_by} wrote it, {running} runs it")
    return mismatches


@functools.cache
def _packages_distributions() -> dict[str, tuple[str, ...]]:
    """Which distributions provide each top-level module, read once per process: reading
    every installed distribution's file list took about half a second per registration."""
    return {module: tuple(names) for module, names in packages_distributions().items()}
