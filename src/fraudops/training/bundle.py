"""The trained model as one object: feature spec, fitted estimator and decision threshold."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.features.spec import FeatureSpec
from fraudops.times import utc_naive


class ProbabilisticClassifier(Protocol):
    """A fitted scikit-learn style binary classifier."""

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # noqa: N803
        """Class probabilities, one row per sample, fraud in column 1."""
        ...


REFERENCE_ROWS = 20_000


@dataclass(frozen=True, kw_only=True)
class TrainingReference:
    """What the model was validated on: a sample of those feature rows and of its scores.

    Drift monitoring compares served traffic against it; it travels inside the bundle so
    that every registered version carries its own reference.
    """

    features: pd.DataFrame = field(repr=False)  # one column per feature, float64, NaN missing
    scores: npt.NDArray[np.float64] = field(repr=False)
    start: str  # ISO times of the period the sample was drawn from
    end: str
    rows: int  # rows in that period (the sample holds at most REFERENCE_ROWS)


@dataclass(frozen=True, kw_only=True)
class ModelBundle:
    """Everything needed to score raw transactions, and what it was trained on."""

    spec: FeatureSpec
    estimator: ProbabilisticClassifier
    threshold: float
    model_type: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, str] = field(default_factory=dict)
    reference: TrainingReference | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Columns of the feature matrix the estimator expects."""
        return self.spec.names

    @property
    def trained_until(self) -> datetime | None:
        """The end of the data the model learnt from or was tuned on (naive UTC), if recorded.

        `trained_until` since refit models record it; before, the validation end, else the
        training end. Nothing newer than this may judge the model without flattering it.
        """
        for key in ("trained_until", "validation_end", "train_end"):
            if key in self.training:
                moment = datetime.fromisoformat(self.training[key])
                return utc_naive(moment)
        return None

    @property
    def review_capacity(self) -> float | None:
        """Alerts per day the review threshold was fitted to, if it was."""
        value = self.training.get("review_capacity")
        return None if value is None else float(value)

    @property
    def review_threshold(self) -> float | None:
        """The review threshold fitted to review_capacity on validation, if any."""
        value = self.training.get("review_threshold")
        return None if value is None else float(value)

    @property
    def drift_reference(self) -> TrainingReference | None:
        """The training reference, None for bundles pickled before references existed."""
        return getattr(self, "reference", None)

    def score_features(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Fraud probability for each row of a feature matrix."""
        return np.asarray(self.estimator.predict_proba(features)[:, 1], dtype=np.float64)

    def score_frame(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Fraud probability for each transaction of a loaded frame (history within the frame)."""
        from fraudops.features.batch import batch_features  # noqa: PLC0415 - avoids a cycle

        return self.score_features(batch_features(frame, self.spec))
