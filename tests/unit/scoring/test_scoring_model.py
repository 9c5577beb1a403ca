"""FastModel: the bundle's own probabilities, from numpy, with reasons from contributions."""

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.batch import batch_features
from fraudops.features.spec import MS_PER_DAY, FeatureSpec, fit_feature_spec
from fraudops.scoring import model as model_module
from fraudops.scoring.model import FastModel, Reason
from fraudops.scoring.reasons import describe, topic
from fraudops.training.bundle import ModelBundle
from fraudops.training.models import fit_model

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Sample:
    """The real Sparkov sample as a time-ordered feature matrix and its labels."""

    spec: FeatureSpec
    features: Matrix
    labels: npt.NDArray[np.int8]
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def sample(sample_path: Path) -> Sample:
    """Features of the 9,999 real transactions (many NaN: the sample's cards are sparse)."""
    frame = load_transactions(sample_path, SPARKOV).frame
    frame = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=7 * MS_PER_DAY)
    labels = frame["is_fraud"].to_numpy(dtype=np.int8)
    return Sample(spec=spec, features=batch_features(frame, spec), labels=labels, frame=frame)


def _bundle(sample: Sample, model_type: str, params: dict[str, object]) -> ModelBundle:
    """A bundle fitted on the first 70% of the sample, early-stopped on the rest."""
    cut = int(len(sample.features) * 0.7)
    estimator, used = fit_model(
        model_type,
        params,
        features=sample.features[:cut],
        labels=sample.labels[:cut],
        seed=7,
        eval_set=(sample.features[cut:], sample.labels[cut:]),
    )
    return ModelBundle(
        spec=sample.spec, estimator=estimator, threshold=0.5, model_type=model_type, params=used
    )


@pytest.fixture(scope="module")
def xgboost_bundle(sample: Sample) -> ModelBundle:
    """XGBoost stopped early, so predict_proba uses fewer trees than the booster holds."""
    params = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.3, "subsample": 0.9}
    return _bundle(sample, "xgboost", params)


@pytest.fixture(scope="module")
def full_xgboost_bundle(sample: Sample, train_bundle: Callable[..., ModelBundle]) -> ModelBundle:
    """The shared fixture's small XGBoost, trained without early stopping (all its trees)."""
    return train_bundle(sample.frame, threshold=0.5, seed=3)


@pytest.fixture(scope="module")
def logreg_bundle(sample: Sample) -> ModelBundle:
    """The project's imputed, standardised logistic regression."""
    return _bundle(sample, "logreg", {"C": 1.0})


@pytest.fixture(scope="module")
def forest_bundle(sample: Sample) -> ModelBundle:
    """A small imputed random forest."""
    params = {"n_estimators": 25, "max_depth": 8, "min_samples_leaf": 3, "max_features": 0.3}
    return _bundle(sample, "random_forest", params)


@pytest.fixture(scope="module")
def bundles(
    xgboost_bundle: ModelBundle,
    full_xgboost_bundle: ModelBundle,
    logreg_bundle: ModelBundle,
    forest_bundle: ModelBundle,
) -> dict[str, ModelBundle]:
    """Every supported model family by name."""
    return {
        "xgboost": xgboost_bundle,
        "xgboost_all_trees": full_xgboost_bundle,
        "logreg": logreg_bundle,
        "random_forest": forest_bundle,
    }


FAMILIES = ["xgboost", "xgboost_all_trees", "logreg", "random_forest"]


@pytest.fixture(scope="module")
def models(bundles: dict[str, ModelBundle]) -> dict[str, FastModel]:
    """A FastModel of every family, built once."""
    return {family: FastModel(bundle) for family, bundle in bundles.items()}


def _predict_proba_trees(estimator: object) -> tuple[int, int]:
    """The iteration range XGBClassifier.predict_proba uses."""
    try:
        return 0, int(estimator.best_iteration) + 1  # type: ignore[attr-defined]
    except AttributeError:
        return 0, 0


def _log_odds(probability: float) -> float:
    clipped = min(max(probability, 1e-6), 1.0 - 1e-6)
    return math.log(clipped / (1.0 - clipped))


def test_xgboost_bundle_really_stopped_early(xgboost_bundle: ModelBundle) -> None:
    """The fixture tests the iteration range: its best round is before its last one."""
    estimator = xgboost_bundle.estimator
    assert isinstance(estimator, xgb.XGBClassifier)
    assert estimator.best_iteration + 1 < estimator.get_booster().num_boosted_rounds()


@pytest.mark.parametrize("family", ["xgboost", "xgboost_all_trees"])
def test_xgboost_predict_one_equals_predict_proba_bit_for_bit(
    family: str, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """Every sample row scores exactly as XGBClassifier.predict_proba, NaN rows included."""
    bundle = bundles[family]
    model = FastModel(bundle)
    expected = bundle.score_features(sample.features)
    actual = np.array([model.predict_one(row) for row in sample.features])
    assert "xgboost" == model.method
    np.testing.assert_array_equal(expected, actual)


def test_xgboost_uses_the_early_stopped_trees_only(
    xgboost_bundle: ModelBundle, sample: Sample
) -> None:
    """Scores differ from the whole booster's, so the best iteration really is applied."""
    booster = xgboost_bundle.estimator.get_booster()
    every_tree = booster.inplace_predict(sample.features[:200], iteration_range=(0, 0))
    actual = FastModel(xgboost_bundle).predict_many(sample.features[:200])
    assert not np.array_equal(every_tree.astype(np.float64), actual)


def test_logreg_predict_one_equals_single_row_predict_proba(
    logreg_bundle: ModelBundle, sample: Sample
) -> None:
    """One row scores exactly as predict_proba on that row (and within 1e-12 of a batch)."""
    model = FastModel(logreg_bundle)
    rows = sample.features[::25]
    expected = np.array([logreg_bundle.score_features(row[None, :])[0] for row in rows])
    actual = np.array([model.predict_one(row) for row in rows])
    assert "logreg" == model.method
    np.testing.assert_array_equal(expected, actual)
    batch = logreg_bundle.score_features(sample.features)
    everyone = np.array([model.predict_one(row) for row in sample.features])
    np.testing.assert_allclose(batch, everyone, rtol=0, atol=1e-12)


def test_random_forest_predict_one_equals_predict_proba(
    forest_bundle: ModelBundle, sample: Sample
) -> None:
    """Every row within 1e-12 (sklearn's two threads add the trees in varying order)."""
    model = FastModel(forest_bundle)
    expected = forest_bundle.score_features(sample.features)
    actual = np.array([model.predict_one(row) for row in sample.features])
    assert "random_forest" == model.method
    np.testing.assert_allclose(expected, actual, rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_many_equals_score_features(
    family: str, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """The batch path gives the bundle's own probabilities for the whole sample."""
    bundle = bundles[family]
    expected = bundle.score_features(sample.features)
    np.testing.assert_allclose(
        expected, FastModel(bundle).predict_many(sample.features), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("family", ["xgboost", "xgboost_all_trees"])
def test_xgboost_contributions_add_up_to_the_margin(
    family: str, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """Bias plus contributions is the booster's log-odds, and they equal approx_contribs."""
    bundle = bundles[family]
    model = FastModel(bundle)
    rows = sample.features[::20]
    booster = bundle.estimator.get_booster()
    trees = _predict_proba_trees(bundle.estimator)
    margins = booster.inplace_predict(rows, iteration_range=trees, predict_type="margin")
    saabas = booster.predict(
        xgb.DMatrix(rows), pred_contribs=True, approx_contribs=True, iteration_range=trees
    )
    actual = np.array([model.contributions(row) for row in rows])
    np.testing.assert_allclose(margins, actual.sum(axis=1) + model.bias, rtol=0, atol=1e-4)
    np.testing.assert_allclose(saabas[:, :-1], actual, rtol=0, atol=1e-4)
    np.testing.assert_allclose(saabas[0, -1], model.bias, rtol=0, atol=1e-5)


def test_logreg_contribution_is_coefficient_times_standardised_value(
    logreg_bundle: ModelBundle, sample: Sample
) -> None:
    """Each contribution is coef_j x the imputed, standardised value; the sum is the decision."""
    pipeline = logreg_bundle.estimator
    assert isinstance(pipeline, Pipeline)
    model = FastModel(logreg_bundle)
    rows = sample.features[::50]
    standardised = pipeline[:-1].transform(rows)
    expected = standardised * pipeline[-1].coef_[0]
    actual = model.contributions_many(rows)
    np.testing.assert_allclose(expected, actual, rtol=1e-12, atol=1e-12)
    decision = pipeline.decision_function(rows)
    np.testing.assert_allclose(decision, actual.sum(axis=1) + model.bias, rtol=0, atol=1e-9)


def test_random_forest_contributions_add_up_to_the_log_odds(
    forest_bundle: ModelBundle, sample: Sample
) -> None:
    """Bias plus contributions is the log-odds of the forest's (clipped) probability."""
    model = FastModel(forest_bundle)
    for row in sample.features[::40]:
        expected = _log_odds(model.predict_one(row))
        assert expected == pytest.approx(model.contributions(row).sum() + model.bias, abs=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_reasons_are_the_largest_positive_contributions_in_order(
    family: str, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """Reasons are the top positive contributions, largest first, with value and sentence,
    one per topic: a feature saying what an earlier reason said (the hour after whether it
    is night) gives way to the next."""
    model = FastModel(bundles[family])
    names = bundles[family].feature_names
    explained = skipped = 0
    for row in sample.features[::97]:
        contributions = model.contributions(row)
        positive = sorted(
            ((c, names[i]) for i, c in enumerate(contributions.tolist()) if c > 0.0), reverse=True
        )  # fmt: skip
        expected: list[float] = []
        named: set[str] = set()
        for contribution, feature in positive:
            if len(expected) == 3:
                break
            if topic(feature) in named:
                skipped += 1
                continue
            named.add(topic(feature))
            expected.append(contribution)
        reasons = model.reasons(row, top=3)
        assert expected == [reason.contribution for reason in reasons]
        assert len({topic(reason.feature) for reason in reasons}) == len(reasons)
        for reason in reasons:
            column = names.index(reason.feature)
            value = float(row[column])
            known = None if math.isnan(value) else value
            assert Reason(reason.feature, known, float(contributions[column]), describe(
                reason.feature, known
            )) == reason  # fmt: skip
        explained += bool(reasons)
    assert explained > 0
    assert skipped > 0 or family == "logreg", "no row of the sample had a topic twice"


def test_reasons_are_empty_when_nothing_pushes_towards_fraud(logreg_bundle: ModelBundle) -> None:
    """A row whose every standardised value opposes its coefficient has no reason at all."""
    pipeline = logreg_bundle.estimator
    assert isinstance(pipeline, Pipeline)
    scaler, logreg = pipeline.named_steps["scale"], pipeline.named_steps["logreg"]
    row = scaler.mean_ - np.sign(logreg.coef_[0]) * scaler.scale_
    model = FastModel(logreg_bundle)
    assert (model.contributions(row) <= 0.0).all()
    assert () == model.reasons(row)
    assert () == model.score(row).reasons


def test_top_limits_the_number_of_reasons(xgboost_bundle: ModelBundle, sample: Sample) -> None:
    """top=1 gives the first of the top-3 reasons, top=0 none."""
    model = FastModel(xgboost_bundle)
    row = next(r for r in sample.features if len(model.reasons(r)) == 3)
    assert model.reasons(row, top=3)[:1] == model.reasons(row, top=1)
    assert () == model.reasons(row, top=0)


@pytest.mark.parametrize(
    ("size", "row_by_row"),
    [(300, None), (5, None), (5, 0)],
    ids=["300 rows, vectorised", "5 rows, the family's choice", "5 rows, vectorised"],
)
@pytest.mark.parametrize("family", FAMILIES)
def test_score_batch_equals_score_of_each_row(
    family: str, size: int, row_by_row: int | None, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """A batch gives each row's single score and the very same reasons, whichever path it
    takes: vectorised, or (a small XGBoost batch, as concurrent requests make) row by row."""
    model = FastModel(bundles[family], row_by_row=row_by_row)
    rows = sample.features[:size]
    batch = model.score_batch(rows, top=3)
    singles = [model.score(row, top=3) for row in rows]
    assert [s.reasons for s in singles] == [b.reasons for b in batch]
    np.testing.assert_allclose(
        [s.probability for s in singles], [b.probability for b in batch], rtol=0, atol=1e-12
    )


def test_missing_values_take_xgboost_default_branches(xgboost_bundle: ModelBundle) -> None:
    """A row of nothing but NaN scores as XGBoost scores it; its reasons describe missing values."""
    model = FastModel(xgboost_bundle)
    row = np.full(len(xgboost_bundle.feature_names), np.nan)
    assert xgboost_bundle.score_features(row[None, :])[0] == model.predict_one(row)
    assert all(reason.value is None for reason in model.reasons(row))


def test_bare_random_forest_sends_missing_values_where_sklearn_does(sample: Sample) -> None:
    """A forest fitted on NaN (sklearn's own missing-value support) scores NaN rows the same."""
    forest = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0, n_jobs=1)
    forest.fit(sample.features, sample.labels)
    bundle = ModelBundle(
        spec=sample.spec, estimator=forest, threshold=0.5, model_type="random_forest"
    )
    model = FastModel(bundle)
    assert "random_forest" == model.method
    np.testing.assert_array_equal(
        bundle.score_features(sample.features), model.predict_many(sample.features)
    )


def test_other_estimators_fall_back_to_the_bundle_without_reasons(sample: Sample) -> None:
    """An estimator FastModel cannot read is scored by the bundle itself, with no reasons."""
    pipeline = Pipeline([("impute", SimpleImputer(keep_empty_features=True)), ("nb", GaussianNB())])
    pipeline.fit(sample.features, sample.labels)
    bundle = ModelBundle(spec=sample.spec, estimator=pipeline, threshold=0.5, model_type="nb")
    model = FastModel(bundle)
    rows = sample.features[:50]
    assert ("generic", False) == (model.method, model.explains)
    np.testing.assert_array_equal(
        bundle.score_features(rows), [model.predict_one(row) for row in rows]
    )
    assert [()] * 50 == [model.reasons(row) for row in rows]
    assert [()] * 50 == [scored.reasons for scored in model.score_batch(rows)]


def test_rows_of_the_wrong_width_are_refused(xgboost_bundle: ModelBundle) -> None:
    """A vector or matrix with another number of features raises instead of mis-scoring."""
    model = FastModel(xgboost_bundle)
    width = len(xgboost_bundle.feature_names)
    with pytest.raises(ValueError, match=f"{width} features"):
        model.predict_one(np.zeros(width + 1))
    with pytest.raises(ValueError, match=f"{width} features"):
        model.predict_many(np.zeros(width))


def test_the_bundle_is_left_untouched(xgboost_bundle: ModelBundle, sample: Sample) -> None:
    """Building a FastModel changes neither the booster's settings nor the bundle's scores."""
    before = xgboost_bundle.score_features(sample.features)
    config = xgboost_bundle.estimator.get_booster().save_config()
    FastModel(xgboost_bundle)
    assert config == xgboost_bundle.estimator.get_booster().save_config()
    np.testing.assert_array_equal(before, xgboost_bundle.score_features(sample.features))


@pytest.mark.parametrize("family", FAMILIES)
def test_threads_share_one_model_safely(
    family: str, bundles: dict[str, ModelBundle], sample: Sample
) -> None:
    """4 threads x 500 scores (and concurrent batches) equal the sequential results."""
    model = FastModel(bundles[family])
    rows = sample.features[:2000]
    expected = [model.score(row) for row in rows]
    expected_batch = model.predict_many(rows)

    def score_range(start: int) -> list[object]:
        return [model.score(row) for row in rows[start : start + 500]]

    with ThreadPoolExecutor(max_workers=5) as pool:
        batches = [pool.submit(model.predict_many, rows) for _ in range(3)]
        parts = list(pool.map(score_range, range(0, 2000, 500)))
    assert expected == [scored for part in parts for scored in part]
    for batch in batches:
        np.testing.assert_array_equal(expected_batch, batch.result())


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_row_scores_as_the_bundle_does(
    data: st.DataObject, bundles: dict[str, ModelBundle], models: dict[str, FastModel]
) -> None:
    """Scoring is deterministic and equals the bundle's for arbitrary values and NaN patterns."""
    row = data.draw(
        hnp.arrays(
            np.float64,
            len(bundles["xgboost"].feature_names),
            elements=st.one_of(
                st.just(math.nan), st.floats(-1e6, 1e6), st.sampled_from([0.0, 1.0])
            ),
        )
    )
    for family in ("xgboost", "logreg"):
        assert len(bundles[family].feature_names) == len(row)
        expected = bundles[family].score_features(row[None, :])[0]
        assert expected == models[family].predict_one(row)
        assert models[family].score(row) == models[family].score(row.copy())


TREE_FAMILIES = ["xgboost", "xgboost_all_trees", "random_forest"]


@pytest.fixture(scope="module")
def numpy_models(bundles: dict[str, ModelBundle]) -> dict[str, FastModel]:
    """The tree families walked by numpy only: the reference of the compiled kernel."""
    return {family: FastModel(bundles[family], tree_walk="numpy") for family in TREE_FAMILIES}


def _with_missing(rows: Matrix, share: float, seed: int) -> Matrix:
    """The rows with a share of their values (more than the sample has) replaced by NaN."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(rows.shape) < share, np.nan, rows)


@pytest.mark.parametrize("family", TREE_FAMILIES)
def test_compiled_walk_equals_the_numpy_walk_bit_for_bit(
    family: str, models: dict[str, FastModel], numpy_models: dict[str, FastModel], sample: Sample
) -> None:
    """Probabilities, contributions and reasons of the numba kernel equal numpy's exactly."""
    compiled, reference = models[family], numpy_models[family]
    assert (True, False) == (compiled.compiled, reference.compiled)
    nothing = np.full((3, sample.features.shape[1]), np.nan)
    rows = np.concatenate([sample.features, _with_missing(sample.features, 0.3, 1), nothing])
    for row in rows:
        assert reference.score(row) == compiled.score(row)
        assert reference.predict_one(row) == compiled.predict_one(row)
    np.testing.assert_array_equal(
        np.array([reference.contributions(row) for row in rows[::7]]),
        np.array([compiled.contributions(row) for row in rows[::7]]),
    )


@pytest.mark.parametrize("family", TREE_FAMILIES)
def test_compiled_batches_equal_the_numpy_batches(
    family: str, models: dict[str, FastModel], numpy_models: dict[str, FastModel], sample: Sample
) -> None:
    """predict_many, contributions_many and score_batch through the kernel equal numpy's."""
    compiled, reference = models[family], numpy_models[family]
    rows = _with_missing(sample.features, 0.2, 2)
    np.testing.assert_array_equal(reference.predict_many(rows), compiled.predict_many(rows))
    np.testing.assert_array_equal(
        reference.contributions_many(rows), compiled.contributions_many(rows)
    )
    assert reference.score_batch(rows[:500]) == compiled.score_batch(rows[:500])
    # A batch small enough to go row by row: through the kernel's one pass over all its rows.
    assert reference.score_batch(rows[:64]) == compiled.score_batch(rows[:64])


def test_a_small_xgboost_batch_scores_each_row_exactly_as_alone(
    models: dict[str, FastModel], sample: Sample
) -> None:
    """The kernel's pass over a small batch (probabilities, contributions and the order of
    reasons at once) equals `score` of each row to the bit, missing values and all."""
    model = models["xgboost"]
    nothing = np.full((2, sample.features.shape[1]), np.nan)
    rows = np.concatenate([_with_missing(sample.features[:300], 0.3, 3), nothing])
    for start in range(0, len(rows), 37):
        batch = rows[start : start + 37]
        assert [model.score(row, top=3) for row in batch] == model.score_batch(batch, top=3)
    assert [] == model.score_batch(rows[:0])
    assert [model.score(rows[0], top=0)] == model.score_batch(rows[:1], top=0)


@settings(max_examples=300, deadline=None)
@given(
    contributions=hnp.arrays(
        np.float64,
        st.integers(0, 12),
        elements=st.one_of(
            st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, math.nan, math.inf, -math.inf]),
            st.floats(-2.0, 2.0),
        ),
    ),
    size=st.integers(0, 8),
)
def test_reason_order_is_the_positive_head_of_a_stable_argsort(
    contributions: npt.NDArray[np.float64], size: int
) -> None:
    """The kernel picks what `score` reads from a stable argsort of the negated contributions:
    its positive head, ties in column order, NaN, zeros and negatives left out."""
    from fraudops.scoring import compiled  # noqa: PLC0415 - numba loads where it is used

    order = np.full(size, -1, dtype=np.intp)
    count = compiled.reason_order(contributions, order)
    head = np.argsort(-contributions, kind="stable")[:size]
    expected = [int(column) for column in head if contributions[column] > 0.0]
    assert expected == order[:count].tolist()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_compiled_walk_equals_numpy_on_any_row(
    data: st.DataObject,
    models: dict[str, FastModel],
    numpy_models: dict[str, FastModel],
    sample: Sample,
) -> None:
    """Arbitrary values, infinities and NaN patterns: the kernel and numpy agree exactly."""
    row = data.draw(
        hnp.arrays(
            np.float64,
            sample.features.shape[1],
            elements=st.one_of(
                st.just(math.nan),
                st.floats(-1e6, 1e6),
                st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf]),
            ),
        )
    )
    for family in TREE_FAMILIES:
        assert numpy_models[family].score(row) == models[family].score(row)
        np.testing.assert_array_equal(
            numpy_models[family].contributions(row), models[family].contributions(row)
        )


def test_background_walk_scores_the_same_before_and_after_the_switch(
    xgboost_bundle: ModelBundle, numpy_models: dict[str, FastModel], sample: Sample
) -> None:
    """A model loading its kernel in a thread scores as numpy meanwhile, then uses the kernel."""
    model = FastModel(xgboost_bundle, tree_walk="background")
    rows = sample.features[:300]
    during = [model.score(row) for row in rows]
    assert model.wait_compiled(timeout=120)
    after = [model.score(row) for row in rows]
    expected = [numpy_models["xgboost"].score(row) for row in rows]
    assert expected == during
    assert expected == after


def test_without_numba_the_numpy_walk_serves(
    xgboost_bundle: ModelBundle, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel cannot be loaded, the model stays on numpy with the same scores."""
    monkeypatch.setattr(model_module, "_compiled_kernels", lambda: None)
    model = FastModel(xgboost_bundle, tree_walk="background")
    assert not model.wait_compiled(timeout=120)
    rows = sample.features[:200]
    np.testing.assert_array_equal(
        xgboost_bundle.score_features(rows), [model.predict_one(row) for row in rows]
    )


def test_linear_models_have_no_compiled_walk(logreg_bundle: ModelBundle) -> None:
    """Logistic regression needs no tree walk: nothing compiles and nothing to wait for."""
    model = FastModel(logreg_bundle)
    assert (False, False) == (model.compiled, model.wait_compiled(timeout=0))


CACHE_PROGRAM = """
import json, numpy as np
from fraudops.scoring import compiled
width, slots = 3, np.array([[0, 1], [0, 0], [0, 0]], dtype=np.intp)
for dtype in (np.float32, np.float64):
    compiled.walk_one(np.zeros(width), slots, np.zeros(2, dtype), np.zeros(2), np.zeros(2, dtype),
                      np.zeros(1, np.intp), 1, False, np.zeros(1, dtype), np.zeros(width))
print(json.dumps([sum(compiled.walk_one.stats.cache_hits.values()),
                  sum(compiled.walk_one.stats.cache_misses.values())]))
"""


@pytest.mark.slow
def test_the_kernel_compiles_once_into_numba_cache_dir(tmp_path: Path) -> None:
    """A first process compiles into NUMBA_CACHE_DIR; the next one loads both kernels from it."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}

    def hits_and_misses() -> list[int]:
        completed = subprocess.run(
            [sys.executable, "-c", CACHE_PROGRAM],
            capture_output=True, text=True, check=True, timeout=240, env=env,
        )  # fmt: skip
        counts: list[int] = json.loads(completed.stdout.strip().splitlines()[-1])
        return counts

    assert [0, 2] == hits_and_misses()
    assert list(tmp_path.rglob("*.nbi"))
    assert [2, 0] == hits_and_misses()


def test_the_kernels_sigmoid_is_xgboosts_to_the_bit(models: dict[str, FastModel]) -> None:
    """The kernel's probability of a margin equals the C expf sigmoid on 20,000 margins."""
    from fraudops.scoring import compiled  # noqa: PLC0415 - imports numba

    sigmoid = models["xgboost"]._engine._sigmoid  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    specials = [0.0, -0.0, 88.7, -88.7, 88.72, -88.72, 1e-8, -1e-8, 200.0, -200.0]
    margins = np.concatenate([rng.uniform(-100, 100, 20_000), specials]).astype(np.float32)
    one_leaf = np.zeros((3, 1), dtype=np.intp)
    actual = []
    for margin in margins:
        cells = np.empty(2, dtype=np.float32)
        compiled.walk_one(
            np.zeros(1), one_leaf, np.zeros(1, np.float32), np.zeros(1),
            np.array([margin]), np.zeros(1, np.intp), 0, False, cells, np.zeros(0),
        )  # fmt: skip
        actual.append(float(cells[1]))
    assert [sigmoid(margin) for margin in margins] == actual
