"""The model zoo: logistic regression, random forest and XGBoost, with their search spaces.

Class imbalance is handled by weights (class_weight, scale_pos_weight), never by dropping
frauds. Missing feature values (a card's first transaction has no history) are native to
XGBoost and imputed by the median for the scikit-learn models.
"""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import optuna
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from fraudops.training.bundle import ProbabilisticClassifier

ModelType = Literal["xgboost", "random_forest", "logreg"]
MODEL_TYPES: tuple[ModelType, ...] = ("xgboost", "random_forest", "logreg")

Matrix = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int8]


def default_params(model_type: ModelType) -> dict[str, Any]:
    """Sound hyperparameters for when no tuning budget is given."""
    if model_type == "xgboost":
        return {
            "n_estimators": 300,
            "max_depth": 6,
            "learning_rate": 0.08,
            "subsample": 0.9,
            "colsample_bytree": 0.8,
            "min_child_weight": 1.0,
            "reg_lambda": 1.0,
            "pos_weight_power": 0.5,
        }
    if model_type == "random_forest":
        return {
            "n_estimators": 100,
            "max_depth": 12,
            "min_samples_leaf": 5,
            "max_features": 0.2,
            "max_samples": 0.5,
        }
    return {"C": 1.0}


def suggest_params(trial: optuna.trial.BaseTrial, model_type: ModelType) -> dict[str, Any]:
    """The search space of one model type, sampled by an Optuna trial."""
    if model_type == "xgboost":
        return {
            "n_estimators": 300,
            "max_depth": trial.suggest_int("max_depth", 3, 9),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
            # 0: no reweighting, 1: fully balanced classes; in between often ranks best.
            "pos_weight_power": trial.suggest_float("pos_weight_power", 0.0, 1.0),
        }
    if model_type == "random_forest":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 200, step=50),
            "max_depth": trial.suggest_int("max_depth", 6, 16),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 0.5),
            # Each tree sees half the rows: a forest on a million transactions stays minutes.
            "max_samples": 0.5,
        }
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


def fit_model(
    model_type: ModelType,
    params: dict[str, Any],
    *,
    features: Matrix,
    labels: Labels,
    seed: int,
    eval_set: tuple[Matrix, Labels] | None = None,
) -> tuple[ProbabilisticClassifier, dict[str, Any]]:
    """Fit one model; return it with the parameters it really used (e.g. early-stopped rounds)."""
    builders: dict[ModelType, Callable[..., tuple[ProbabilisticClassifier, dict[str, Any]]]] = {
        "xgboost": _fit_xgboost,
        "random_forest": _fit_random_forest,
        "logreg": _fit_logreg,
    }
    return builders[model_type](
        params, features=features, labels=labels, seed=seed, eval_set=eval_set
    )


def _fit_xgboost(
    params: dict[str, Any],
    *,
    features: Matrix,
    labels: Labels,
    seed: int,
    eval_set: tuple[Matrix, Labels] | None,
) -> tuple[ProbabilisticClassifier, dict[str, Any]]:
    """Histogram XGBoost weighted towards the rare class, early-stopped on validation AP."""
    positives = max(int(labels.sum()), 1)
    balance = (len(labels) - positives) / positives
    booster_params = {k: v for k, v in params.items() if k != "pos_weight_power"}
    model = XGBClassifier(
        **booster_params,
        scale_pos_weight=balance ** params.get("pos_weight_power", 0.5),
        tree_method="hist",
        eval_metric="aucpr",
        early_stopping_rounds=30 if eval_set is not None else None,
        n_jobs=2,
        random_state=seed,
        verbosity=0,
    )
    model.fit(
        features,
        labels,
        eval_set=[eval_set] if eval_set is not None else None,
        verbose=False,
    )
    used = dict(params)
    if eval_set is not None:
        # Predictions stop at the best round by themselves; record it for reproduction.
        used["n_estimators"] = int(model.best_iteration) + 1
    return model, used


def _fit_random_forest(
    params: dict[str, Any],
    *,
    features: Matrix,
    labels: Labels,
    seed: int,
    eval_set: tuple[Matrix, Labels] | None,  # noqa: ARG001 - same signature as the others
) -> tuple[ProbabilisticClassifier, dict[str, Any]]:
    """Random forest on median-imputed features with balanced bootstrap class weights."""
    model = _imputed(
        (
            "forest",
            RandomForestClassifier(
                **params, class_weight="balanced_subsample", n_jobs=2, random_state=seed
            ),
        )
    )
    model.fit(features, labels)
    return model, dict(params)


def _fit_logreg(
    params: dict[str, Any],
    *,
    features: Matrix,
    labels: Labels,
    seed: int,
    eval_set: tuple[Matrix, Labels] | None,  # noqa: ARG001 - same signature as the others
) -> tuple[ProbabilisticClassifier, dict[str, Any]]:
    """Standardised, median-imputed logistic regression with balanced class weights."""
    model = _imputed(
        ("scale", StandardScaler()),
        (
            "logreg",
            LogisticRegression(**params, class_weight="balanced", max_iter=2000, random_state=seed),
        ),
    )
    model.fit(features, labels)
    return model, dict(params)


def _imputed(*steps: tuple[str, Any]) -> Pipeline:
    """A pipeline that first fills missing features (no history yet) with training medians."""
    return Pipeline(
        [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), *steps]
    )


def feature_importance(model: ProbabilisticClassifier, names: tuple[str, ...]) -> dict[str, float]:
    """Importance per feature: gain share for trees, |coefficient| for logistic regression."""
    estimator: Any = model
    if isinstance(model, Pipeline):
        estimator = model.steps[-1][1]
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=np.float64)
    elif hasattr(estimator, "coef_"):
        values = np.abs(np.asarray(estimator.coef_, dtype=np.float64)).ravel()
    else:
        return {}
    total = float(values.sum()) or 1.0
    return {name: float(value) / total for name, value in zip(names, values, strict=True)}
