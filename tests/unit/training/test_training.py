"""The standard recipe trains on the past, is reproducible and never peeks at test labels."""

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_recipes import QUICK, TEST_END, TEST_START
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.data.profiles import SPARKOV
from fraudops.features.spec import MS_PER_DAY
from fraudops.training.backtest import BacktestError, BacktestResult, run_backtest
from fraudops.training.trainer import (
    TrainingConfig,
    TrainingError,
    TrainingResult,
    carried_threshold,
    train,
    training_labels,
)
from fraudops.training.workflow import integer_ids_as_numbers


def test_backtest_scores_ignore_the_labels_of_the_test_period(
    history: pd.DataFrame, quick_backtest: BacktestResult
) -> None:
    """Shuffling every label inside the test period leaves every test score unchanged."""
    first = quick_backtest
    shuffled = history.copy()
    in_test = shuffled["event_time"] >= pd.Timestamp(TEST_START)
    rng = np.random.default_rng(0)
    shuffled.loc[in_test, "is_fraud"] = rng.permutation(
        shuffled.loc[in_test, "is_fraud"].to_numpy()
    )
    second = run_backtest(shuffled, SPARKOV, test_start=TEST_START, test_end=TEST_END, config=QUICK)
    assert (shuffled["is_fraud"] != history["is_fraud"]).any()
    pd.testing.assert_frame_equal(first.scores, second.scores)


def test_backtest_trains_only_on_labels_older_than_the_delay(
    history: pd.DataFrame, quick_backtest: BacktestResult
) -> None:
    """Training and validation end a full delay before the test period starts."""
    result = quick_backtest
    split = result.training.split
    assert datetime(2024, 1, 22) == split.validation_end
    assert datetime(2024, 1, 15) == split.validation_start
    assert datetime(2024, 1, 8) == split.train_end
    times = result.scores.merge(history, on="trans_num")["event_time"]
    assert times.min() >= pd.Timestamp(TEST_START)
    assert times.max() < pd.Timestamp("2024-02-05")


def test_training_is_reproducible_for_a_seed(
    history: pd.DataFrame, quick_training: TrainingResult
) -> None:
    """Same data, config and seed give the same threshold and the same scores."""
    first = quick_training
    second = train(history, SPARKOV, QUICK)
    assert first.bundle.threshold == second.bundle.threshold
    np.testing.assert_array_equal(
        first.bundle.score_features(first.features), second.bundle.score_features(second.features)
    )


@pytest.mark.parametrize("model_type", ["xgboost", "random_forest", "logreg"])
def test_every_model_ranks_fraud_well_above_chance(history: pd.DataFrame, model_type: str) -> None:
    """On simulated data each model ranks fraud far above its base rate on validation."""
    result = train(history, SPARKOV, TrainingConfig(model_type=model_type, trials=0))
    base_rate = history["is_fraud"].mean()
    assert result.validation.average_precision > 20 * base_rate
    assert result.validation.roc_auc > 0.9


def test_identifiers_are_never_features(default_training: TrainingResult) -> None:
    """No card number, name, street, merchant name or transaction id reaches the model."""
    result = default_training
    forbidden = {"cc_num", "trans_num", "first", "last", "street", "merchant", "zip", "job"}
    assert not forbidden & set(result.bundle.feature_names)
    assert "card_count_1h" in result.bundle.feature_names


def test_a_period_without_fraud_is_a_clear_error(history: pd.DataFrame) -> None:
    """When the training period holds no fraud the error says which period and why."""
    legit = history[history["is_fraud"] == 0]
    with pytest.raises(TrainingError, match=r"training period .* 0 fraud"):
        train(legit, SPARKOV, QUICK)


def test_a_test_period_without_data_is_refused(history: pd.DataFrame) -> None:
    """A test period outside the data is refused before any training."""
    with pytest.raises(BacktestError, match="no transaction between"):
        run_backtest(
            history,
            SPARKOV,
            test_start=datetime(2030, 1, 1),
            test_end=datetime(2030, 1, 7),
            config=QUICK,
        )


def test_backtest_command_writes_the_contract_files(history_path: Path, tmp_path: Path) -> None:
    """`fraudops backtest` writes one score per test transaction and a JSON report of metrics."""
    scores_out, report_out = tmp_path / "scores.parquet", tmp_path / "report.json"
    args = [
        "backtest", "--data", str(history_path), "--profile", "sparkov",
        "--test-start", "2024-01-29", "--test-end", "2024-02-04", "--delay-days", "7",
        "--scores-out", str(scores_out), "--report-out", str(report_out), "--trials", "1",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert 0 == result.exit_code, result.output
    scores = pd.read_parquet(scores_out)
    assert ["trans_num", "score"] == list(scores.columns)
    assert scores["score"].between(0, 1).all()
    report = json.loads(report_out.read_text())
    assert len(scores) == report["metrics"]["transactions"]
    assert 7.0 == report["label_window_lag_days"]  # no label times: windows end the delay before
    for name in (
        "roc_auc",
        "average_precision",
        "precision",
        "recall",
        "f1",
        "card_precision_at_100",
    ):
        assert 0.0 <= report["metrics"][name] <= 1.0
    files = report["artifacts"]
    assert {"pr_curve", "roc_curve", "confusion_matrix"} <= set(files)
    assert all(Path(path).is_file() for path in files.values())


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--model", "deep-magic"], "--model must be one of xgboost, random_forest, logreg"),
        # Label windows cannot end after the transaction.
        (["--label-window-lag-days", "-1"], "--label-window-lag-days must be >= 0"),
    ],
)
def test_backtest_command_names_a_bad_option(
    history_path: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    """A bad option is one line on stderr and exit code 2."""
    args = [
        "backtest", "--data", str(history_path), "--profile", "sparkov",
        "--test-start", "2024-01-29", "--test-end", "2024-02-04", "--delay-days", "7",
        "--scores-out", str(tmp_path / "s.parquet"), "--report-out", str(tmp_path / "r.json"),
        *option,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert 2 == result.exit_code
    assert message in result.stderr


def test_score_command_without_a_champion_says_so_in_one_line(
    history_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No model registered yet: one line naming the missing champion, exit code 2."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    args = ["score", "--data", str(history_path), "--profile", "sparkov"]
    args += ["--out", str(tmp_path / "scores.parquet")]
    result = CliRunner().invoke(app, args)
    assert 2 == result.exit_code
    assert "champion" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_whole_number_ids_are_written_as_integers_and_others_as_text() -> None:
    """fdh's numeric TRANSACTION_ID goes back out as int64; hex or zero-padded ids stay text."""
    numbers = integer_ids_as_numbers(pd.Series(["0", "107528", "-3"]))
    assert "int64" == str(numbers.dtype)
    assert [0, 107528, -3] == numbers.tolist()
    assert ["0a1f", "12"] == integer_ids_as_numbers(pd.Series(["0a1f", "12"])).tolist()
    assert ["007", "12"] == integer_ids_as_numbers(pd.Series(["007", "12"])).tolist()


@pytest.mark.parametrize("model_type", ["xgboost", "random_forest", "logreg"])
def test_tuning_starts_from_the_defaults_and_stays_in_budget(
    history: pd.DataFrame, model_type: str
) -> None:
    """Two trials per model (the first the default parameters) run cleanly and count as two."""
    # The first three weeks suffice to run the trials (a third of the rows).
    times = pd.to_datetime(history["trans_date_trans_time"])
    three_weeks = history[times < times.min().normalize() + pd.Timedelta(days=21)]
    config = TrainingConfig(
        model_type=model_type, trials=2, seed=1, delay_days=2, validation_days=5
    )
    result = train(three_weeks, SPARKOV, config)
    assert 2 == result.trials_run
    assert result.best_tuning_score is not None
    assert 0.0 < result.best_tuning_score <= 1.0


def test_a_refit_model_keeps_the_alert_share_its_threshold_was_chosen_for() -> None:
    """The carried threshold alerts on the same share of rows as the original one did."""
    rng = np.random.default_rng(3)
    before = rng.beta(1, 20, 10_000)
    after = before**0.5  # the refitted model scores higher across the board
    threshold = float(np.quantile(before, 0.99))
    carried = carried_threshold(threshold, before=before, after=after)
    assert np.mean(after >= carried) == pytest.approx(np.mean(before >= threshold), abs=1e-3)
    assert carried == pytest.approx(threshold**0.5, rel=1e-2)
    # No alert at all before: nothing to carry, the threshold stays.
    assert carried_threshold(2.0, before=before, after=after) == 2.0


def test_refit_learns_the_validation_days_and_records_its_reference(
    history: pd.DataFrame,
) -> None:
    """With refit the model differs, its reference sample is the validation period's."""
    config = TrainingConfig(trials=0, delay_days=2, validation_days=5)
    plain = train(history, SPARKOV, config)
    refit = train(
        history,
        SPARKOV,
        TrainingConfig(trials=0, delay_days=2, validation_days=5, refit=True, review_capacity=30),
    )
    assert refit.bundle.training["refit"] == "true"
    # The review threshold fitted to the budget on validation is carried like the decision's.
    assert refit.review is not None
    assert 30.0 == refit.bundle.review_capacity
    assert refit.bundle.review_threshold is not None
    assert refit.review.alerts_per_day <= 30.0
    assert plain.bundle.review_threshold is None
    assert refit.bundle.training["trained_until"] == plain.split.validation_end.isoformat()
    reference = refit.bundle.drift_reference
    assert reference is not None
    assert reference.start == plain.split.validation_start.isoformat()
    assert list(reference.features.columns) == list(refit.bundle.feature_names)
    assert len(reference.scores) == len(reference.features) > 0
    sample = reference.features.to_numpy()
    assert not np.allclose(plain.bundle.score_features(sample), refit.bundle.score_features(sample))


def test_with_label_times_a_model_learns_the_labels_known_by_its_training_moment() -> None:
    """Reported values known by then; a late, never or not-yet reported fraud reads as
    legitimate; without label times, the profile's label as it is."""
    times = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    frame = pd.DataFrame(
        {
            "event_time": times,
            "is_fraud": [1, 1, 0, 1],
            "reported_fraud": [1.0, 1.0, 1.0, np.nan],
            "label_time": [times[0], times[1] + pd.Timedelta(days=30), times[2], pd.NaT],
        }
    )
    known_by = datetime(2024, 1, 10)

    learnt = training_labels(frame, SPARKOV, known_by=known_by, label_delay_ms=0)
    fixed = training_labels(
        frame.drop(columns="label_time"), SPARKOV, known_by=known_by, label_delay_ms=0
    )

    assert ([1, 0, 1, 0], [1, 1, 0, 1]) == (learnt.tolist(), fixed.tolist())


def test_a_backtest_without_holdout_trains_on_the_week_before_the_delay(
    history: pd.DataFrame,
) -> None:
    """--no-holdout: train on [train start, test start - delay), untuned and not early-stopped."""
    config = TrainingConfig(trials=0, seed=3, holdout=False, train_start=datetime(2024, 1, 15))
    result = run_backtest(history, SPARKOV, test_start=TEST_START, test_end=TEST_END, config=config)
    split = result.training.split
    assert (datetime(2024, 1, 15), datetime(2024, 1, 22)) == (split.train_start, split.train_end)
    assert (split.train_start, split.train_end) == (split.validation_start, split.validation_end)
    # No early stopping on the training rows themselves: every default tree is kept.
    assert 300 == result.training.bundle.params["n_estimators"]


def test_without_holdout_tuning_is_refused(history: pd.DataFrame) -> None:
    """Tuning needs a later period to judge on: trials without a hold-out are a clear error."""
    with pytest.raises(TrainingError, match="tuning needs a hold-out validation period"):
        train(history, SPARKOV, TrainingConfig(trials=2, holdout=False))


def test_backtest_command_without_holdout_records_the_one_period(
    history_path: Path, tmp_path: Path
) -> None:
    """`fraudops backtest --no-holdout` reports training and validation as the same week."""
    report_out = tmp_path / "report.json"
    args = [
        "backtest", "--data", str(history_path), "--profile", "sparkov",
        "--train-start", "2024-01-15", "--test-start", "2024-01-29", "--test-end", "2024-02-04",
        "--delay-days", "7", "--no-holdout", "--trials", "0",
        "--scores-out", str(tmp_path / "scores.parquet"), "--report-out", str(report_out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert 0 == result.exit_code, result.output
    training = json.loads(report_out.read_text())["training"]
    assert "2024-01-22T00:00:00" == training["train_end"] == training["validation_end"]
    assert "2024-01-15T00:00:00" == training["train_start"] == training["validation_start"]


def test_a_model_trained_on_label_times_counts_labels_from_their_label_time(
    history: pd.DataFrame, default_training: TrainingResult
) -> None:
    """Label times in the data: label windows end at t (lag 0) unless the recipe sets the
    lag; without them the lag is the delay."""
    timed = history.assign(label_time=history["event_time"] + pd.Timedelta(hours=1))
    untuned = TrainingConfig(trials=0)
    assert 0 == train(timed, SPARKOV, untuned).bundle.spec.label_lag_ms
    old_rule = replace(untuned, label_window_lag_days=7.0)
    assert 7 * MS_PER_DAY == train(timed, SPARKOV, old_rule).bundle.spec.label_lag_ms
    assert 7 * MS_PER_DAY == default_training.bundle.spec.label_lag_ms
