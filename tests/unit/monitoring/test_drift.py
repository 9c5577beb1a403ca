"""Drift per feature: quiet on samples of one distribution, loud on a real shift, corrected."""

import numpy as np
import pandas as pd
import pytest

from fraudops.monitoring.drift import drift_report, psi


def frame(
    rng: np.random.Generator, rows: int, *, scale: float = 1.0, online: float = 0.2
) -> pd.DataFrame:
    """20 numeric features (log-normal amounts and normal others) and a category."""
    data = {f"x{i}": rng.normal(size=rows) for i in range(19)}
    data["amount"] = rng.lognormal(mean=3.5, sigma=1.0, size=rows) * scale
    data["category"] = rng.choice(
        ["online", "grocery", "travel"], size=rows, p=[online, 0.6, 0.4 - online]
    )
    return pd.DataFrame(data)


def test_no_feature_drifts_between_samples_of_one_distribution() -> None:
    """21 features, 20 repetitions: no false alarm once corrected (and PSI small)."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        report = drift_report(frame(rng, 5_000), frame(rng, 5_000), categorical={"category"})
        assert [] == [d.feature for d in report if d.drifted]
        assert all(d.psi < 0.05 for d in report)


def test_dearer_baskets_drift_on_the_amount_only() -> None:
    """Amounts 1.5x dearer: the amount drifts (KS), nothing else does."""
    rng = np.random.default_rng(2)
    report = drift_report(frame(rng, 5_000), frame(rng, 5_000, scale=1.5), categorical={"category"})
    drifted = {d.feature: d for d in report if d.drifted}
    assert {"amount"} == set(drifted)
    assert "ks" == drifted["amount"].test
    assert drifted["amount"].adjusted_p_value < 1e-6
    assert drifted["amount"].psi > 0.1


def test_a_new_category_mix_drifts_by_chi_squared() -> None:
    """Online shopping from 20% to 35% of purchases: the category drifts."""
    rng = np.random.default_rng(3)
    report = drift_report(
        frame(rng, 5_000), frame(rng, 5_000, online=0.35), categorical={"category"}
    )
    drifted = [d for d in report if d.drifted]
    assert ["category"] == [d.feature for d in drifted]
    assert "chi2" == drifted[0].test


def test_a_feature_going_missing_is_drift() -> None:
    """Half the amounts missing now: the missing bin carries the PSI."""
    rng = np.random.default_rng(4)
    reference, current = frame(rng, 5_000), frame(rng, 5_000)
    current.loc[current.index[::2], "amount"] = np.nan
    report = {d.feature: d for d in drift_report(reference, current, features=["amount"])}
    assert report["amount"].psi > 0.25
    assert report["amount"].drifted


def test_tiny_shifts_on_huge_samples_are_not_alarms() -> None:
    """A 2% shift on 200,000 rows is significant but immaterial (PSI under 0.1): no alarm."""
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=200_000)})
    current = pd.DataFrame({"x": rng.normal(loc=0.02, size=200_000)})
    (result,) = drift_report(reference, current)
    assert result.adjusted_p_value < 0.01
    assert result.psi < 0.1
    assert not result.drifted


def test_psi_is_zero_for_equal_distributions_and_grows_with_the_shift() -> None:
    """PSI of identical shares is 0, and larger shifts give larger values."""
    base = [0.25, 0.25, 0.25, 0.25]
    assert psi(base, base) == pytest.approx(0.0)
    assert psi(base, [0.3, 0.25, 0.25, 0.2]) < psi(base, [0.4, 0.25, 0.25, 0.1])


def test_unknown_features_and_a_bad_alpha_are_named() -> None:
    """Asking for a feature the data lacks, or alpha outside (0, 1), is a clear error."""
    data = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="'y'"):
        drift_report(data, data, features=["y"])
    with pytest.raises(ValueError, match="alpha"):
        drift_report(data, data, alpha=1.5)
