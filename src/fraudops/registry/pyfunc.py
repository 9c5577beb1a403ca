"""The bundle as an MLflow pyfunc model: raw transactions in, fraud probability and decision out.

The pyfunc validates and parses its input exactly as the file readers do, and refuses the
whole batch, naming every problem, if any row is invalid: a row is never dropped silently.
"""

import pickle
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types.schema import AnyType, ColSpec, Schema

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
    """A few rows in raw form: timestamps and required columns only, dates as text, no label.

    Optional descriptive columns (names, streets, jobs) stay out of the registry's artifacts.
    """
    wanted = (*profile.timestamp_columns, *profile.required_columns)
    columns = [c for c in dict.fromkeys(wanted) if c in frame.columns and c != profile.label]
    example = frame.loc[:, columns].head(rows).reset_index(drop=True)
    for column in example.columns:
        values = example[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            example[column] = values.dt.strftime("%Y-%m-%d %H:%M:%S")
    return example


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
    distributions = packages_distributions()
    pins: dict[str, str] = {}
    for module in dict.fromkeys(modules):
        for name in dict.fromkeys(distributions.get(module, [module])):
            try:
                pins[name] = f"{name}=={version(name)}"
            except PackageNotFoundError:
                continue
    return sorted(pins.values())
