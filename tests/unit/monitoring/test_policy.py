"""The policy: read from TOML with clear errors, and its retraining rules with evidence."""

from datetime import datetime, timedelta
from pathlib import Path

import pydantic
import pytest

from fraudops.config import Settings
from fraudops.monitoring.budget import AlertBudget
from fraudops.monitoring.drift import FeatureDrift
from fraudops.monitoring.performance import Estimate, WindowPerformance
from fraudops.monitoring.policy import (
    REASONS,
    Policy,
    PolicyError,
    decide,
    load_policy,
    policy_from_file,
)

AS_OF = datetime(2024, 3, 1)


def settings(home: Path, policy_file: Path | None = None) -> Settings:
    """Settings with their own home and nothing from the environment's .env."""
    return Settings(home=home, policy_file=policy_file, _env_file=None)  # type: ignore[call-arg]


def estimate(value: float, low: float, high: float) -> Estimate:
    """A bootstrap estimate at 95%."""
    return Estimate(value=value, low=low, high=high, confidence=0.95, method="bootstrap")


def window(
    *, frauds: int = 50, f1: tuple[float, float, float], ap: tuple[float, float, float]
) -> WindowPerformance:
    """A labelled window with the given F1 and average-precision intervals."""
    proportion = Estimate(value=0.5, low=0.4, high=0.6, confidence=0.95, method="wilson")
    return WindowPerformance(
        transactions=5_000,
        frauds=frauds,
        alerts=60,
        true_positives=30,
        min_frauds=20,
        precision=proportion,
        recall=proportion,
        f1=estimate(*f1),
        average_precision=estimate(*ap),
        card_precision_at_k=0.1,
        card_precision_best_possible=0.2,
        k=100,
    )


def drift(name: str, *, drifted: bool) -> FeatureDrift:
    """A drift test result of one feature."""
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test="ks",
        statistic=0.3 if drifted else 0.01,
        p_value=1e-9 if drifted else 0.6,
        adjusted_p_value=1e-8 if drifted else 0.6,
        psi=0.4 if drifted else 0.01,
        reference_rows=1_000,
        current_rows=1_000,
        drifted=drifted,
    )


HEALTHY = window(f1=(0.6, 0.5, 0.7), ap=(0.7, 0.6, 0.8))


def test_defaults_are_the_documented_ones() -> None:
    """The built-in policy: a week's label delay and window, 20 frauds, 95%, 0.7 x validation."""
    policy = Policy()
    assert (7.0, 7.0, 1.0, 20, 0.95, 0.7) == (
        policy.label_delay_days,
        policy.performance_window_days,
        policy.drift_window_days,
        policy.min_frauds,
        policy.confidence,
        policy.relative_floor,
    )
    assert (None, None, None) == (
        policy.f1_floor,
        policy.average_precision_floor,
        policy.max_model_age_days,
    )
    assert ("average_precision", 0.0, 28.0, 3.0, 5) == (
        policy.promotion_metric,
        policy.promotion_margin,
        policy.retrain_history_days,
        policy.retrain_validation_days,
        policy.retrain_trials,
    )
    assert (0.2, 3) == (policy.alert_budget_tolerance, policy.alert_budget_days)
    assert all(field.description for field in Policy.model_fields.values())


def test_a_policy_is_frozen() -> None:
    """Nothing changes a policy once read."""
    policy = Policy()
    with pytest.raises(pydantic.ValidationError):
        policy.min_frauds = 5  # type: ignore[misc]


def test_a_file_sets_what_it_names_and_keeps_the_rest(tmp_path: Path) -> None:
    """Keys in the file override; the others keep their defaults."""
    path = tmp_path / "policy.toml"
    path.write_text('f1_floor = 0.5\nmin_frauds = 10\ndrift_ignore_features = ["hour"]\n')
    policy = policy_from_file(path)
    assert (0.5, 10, ("hour",), 0.95) == (
        policy.f1_floor,
        policy.min_frauds,
        policy.drift_ignore_features,
        policy.confidence,
    )


def test_a_misspelt_key_is_an_error_naming_it(tmp_path: Path) -> None:
    """`f1_flor` is not silently ignored."""
    path = tmp_path / "policy.toml"
    path.write_text("f1_flor = 0.5\n")
    with pytest.raises(PolicyError, match="unknown setting 'f1_flor'") as caught:
        policy_from_file(path)
    assert str(path) in str(caught.value)


def test_a_bad_value_is_an_error_naming_key_and_value(tmp_path: Path) -> None:
    """A confidence of 1.5 names the key and the value given."""
    path = tmp_path / "policy.toml"
    path.write_text("confidence = 1.5\n")
    with pytest.raises(PolicyError, match=r"confidence = 1\.5"):
        policy_from_file(path)


def test_a_file_that_is_not_toml_is_an_error(tmp_path: Path) -> None:
    """Broken TOML is reported with the file's name."""
    path = tmp_path / "policy.toml"
    path.write_text("min_frauds = = 3\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        policy_from_file(path)


def test_load_policy_prefers_the_setting_then_home_then_defaults(tmp_path: Path) -> None:
    """settings.policy_file, else HOME/policy.toml, else the defaults; a missing file is named."""
    home = tmp_path / "home"
    home.mkdir()
    assert Policy() == load_policy(settings(home))
    (home / "policy.toml").write_text("min_frauds = 7\n")
    assert 7 == load_policy(settings(home)).min_frauds
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("min_frauds = 9\n")
    assert 9 == load_policy(settings(home, chosen)).min_frauds
    with pytest.raises(PolicyError, match=r"missing\.toml"):
        load_policy(settings(home, tmp_path / "missing.toml"))


def test_a_healthy_window_without_drift_is_ok() -> None:
    """Intervals above the floors, nothing drifted: no reason, status ok."""
    verdict = decide(
        policy=Policy(f1_floor=0.4, average_precision_floor=0.5),
        as_of=AS_OF,
        performance=HEALTHY,
        feature_drift=[drift("amount", drifted=False)],
        score_drift=drift("score", drifted=False),
    )
    assert (False, [], "ok") == (verdict.retrain, verdict.reasons, verdict.status)


def test_performance_below_the_floor_with_confidence_triggers() -> None:
    """F1 interval wholly under 0.5 and AP interval under 0.6: both reasons, in that order."""
    poor = window(f1=(0.3, 0.2, 0.45), ap=(0.4, 0.3, 0.55))
    verdict = decide(
        policy=Policy(f1_floor=0.5, average_precision_floor=0.6), as_of=AS_OF, performance=poor
    )
    assert ["f1_below_floor", "average_precision_below_floor"] == verdict.reasons
    assert "retrain" == verdict.status
    assert 0.45 == verdict.detail["floors"]["f1"]["high"]


def test_an_interval_reaching_the_floor_is_not_confident_enough() -> None:
    """Estimate under the floor but the interval's top above it: no reason."""
    unsure = window(f1=(0.45, 0.3, 0.55), ap=(0.7, 0.6, 0.8))
    verdict = decide(policy=Policy(f1_floor=0.5), as_of=AS_OF, performance=unsure)
    assert [] == verdict.reasons


def test_few_frauds_never_trigger_and_say_so() -> None:
    """A terrible window of 5 frauds is not evidence: no reason, insufficient evidence."""
    few = window(frauds=5, f1=(0.1, 0.0, 0.2), ap=(0.1, 0.0, 0.2))
    verdict = decide(
        policy=Policy(f1_floor=0.5, average_precision_floor=0.5), as_of=AS_OF, performance=few
    )
    assert (False, [], "insufficient_evidence") == (
        verdict.retrain,
        verdict.reasons,
        verdict.status,
    )
    assert not decide(policy=Policy(), as_of=AS_OF, performance=None).enough_evidence


def test_without_an_absolute_floor_the_champions_own_validation_sets_it() -> None:
    """Validation AP 0.8 x relative 0.7 gives a 0.56 floor, which an interval up to 0.52 misses."""
    poor_ap = window(f1=(0.6, 0.5, 0.7), ap=(0.45, 0.35, 0.52))
    verdict = decide(
        policy=Policy(),
        as_of=AS_OF,
        performance=poor_ap,
        champion_metrics={"validation_average_precision": 0.8, "validation_f1": 0.6},
    )
    assert ["average_precision_below_floor"] == verdict.reasons
    assert pytest.approx(0.56) == verdict.detail["floors"]["average_precision"]["floor"]
    unknown = decide(policy=Policy(), as_of=AS_OF, performance=poor_ap)
    assert [] == unknown.reasons
    assert unknown.detail["floors"]["f1"]["floor"] is None


def test_feature_drift_counts_against_min_drifted_features() -> None:
    """One drifted feature triggers by default, not when the policy asks for two."""
    features = [drift("amount", drifted=True), drift("hour", drifted=False)]
    by_default = decide(policy=Policy(), as_of=AS_OF, performance=HEALTHY, feature_drift=features)
    assert ["feature_drift"] == by_default.reasons
    assert ["amount"] == by_default.detail["drifted_features"]
    stricter = decide(
        policy=Policy(min_drifted_features=2),
        as_of=AS_OF,
        performance=HEALTHY,
        feature_drift=features,
    )
    assert [] == stricter.reasons


def test_score_drift_triggers_unless_the_policy_turns_it_off() -> None:
    """A drifted score distribution is a reason only with score_drift on."""
    score = drift("score", drifted=True)
    on = decide(policy=Policy(), as_of=AS_OF, performance=HEALTHY, score_drift=score)
    off = decide(
        policy=Policy(score_drift=False), as_of=AS_OF, performance=HEALTHY, score_drift=score
    )
    assert (["score_drift"], []) == (on.reasons, off.reasons)


def test_an_old_model_is_retrained_on_schedule() -> None:
    """Data ending 10 days before as_of, 7 days allowed: schedule; 5 days: nothing."""
    policy = Policy(max_model_age_days=7)
    old = decide(
        policy=policy, as_of=AS_OF, performance=HEALTHY, trained_until=AS_OF - timedelta(days=10)
    )
    recent = decide(
        policy=policy, as_of=AS_OF, performance=HEALTHY, trained_until=AS_OF - timedelta(days=5)
    )
    unscheduled = decide(
        policy=Policy(), as_of=AS_OF, performance=HEALTHY, trained_until=AS_OF - timedelta(days=99)
    )
    assert (["schedule"], [], []) == (old.reasons, recent.reasons, unscheduled.reasons)
    assert 10.0 == old.detail["model_age_days"]


def test_every_reason_code_is_a_known_one() -> None:
    """All the rules firing at once give exactly the documented codes."""
    verdict = decide(
        policy=Policy(f1_floor=0.9, average_precision_floor=0.9, max_model_age_days=1),
        as_of=AS_OF,
        performance=HEALTHY,
        feature_drift=[drift("amount", drifted=True)],
        score_drift=drift("score", drifted=True),
        trained_until=AS_OF - timedelta(days=2),
        alert_budget=AlertBudget(
            capacity=10.0,
            tolerance=0.0,
            required_days=1,
            days=((AS_OF.date(), 11),),
        ),
    )
    assert list(REASONS) == verdict.reasons


def test_ignored_features_match_shell_patterns() -> None:
    """The default leaves out calendar and per-merchant features, nothing else."""
    policy = Policy()
    assert [True, True, True, False, False] == [
        policy.ignores_feature(name)
        for name in ("weekday", "is_weekend", "merchant_risk_7d", "amount", "card_count_1d")
    ]
