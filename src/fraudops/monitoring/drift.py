"""Data drift per feature against a reference sample, corrected for testing many at once.

A feature drifts when its current distribution differs from the reference both
significantly and materially: the test's p-value, adjusted for the number of features
tested (Benjamini-Hochberg false discovery rate), is below `alpha`, and the population
stability index (PSI) is at least `min_psi`. Requiring both keeps large samples, where any
difference is significant, from raising alarms on noise, and small samples from raising
them on a big-looking PSI that chance explains.

Numeric features: two-sample Kolmogorov-Smirnov test, PSI over the reference's deciles.
Categorical features: chi-squared test of the category counts, PSI over the categories.
Missing values count as their own bin or category, and a change in the missing share is
tested too (a feature going missing is drift).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

# Added to every bin's share so an empty bin does not make the PSI infinite.
PSI_FLOOR = 1e-4
DEFAULT_BINS = 10
DEFAULT_ALPHA = 0.01
# The usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
DEFAULT_MIN_PSI = 0.1


@dataclass(frozen=True, kw_only=True)
class FeatureDrift:
    """One feature's comparison with the reference."""

    feature: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    adjusted_p_value: float  # Benjamini-Hochberg over every feature tested together
    psi: float
    reference_rows: int
    current_rows: int
    drifted: bool


def psi(reference_shares: npt.ArrayLike, current_shares: npt.ArrayLike) -> float:
    """Population stability index of two distributions over the same bins (shares sum to 1)."""
    ref = np.asarray(reference_shares, dtype=np.float64) + PSI_FLOOR
    cur = np.asarray(current_shares, dtype=np.float64) + PSI_FLOOR
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_bins(reference: npt.ArrayLike, *, bins: int = DEFAULT_BINS) -> npt.NDArray[np.float64]:
    """Inner edges at the reference's quantiles (ties merged), for `np.searchsorted`."""
    values = np.asarray(reference, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.zeros(0)
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(edges)


def _numeric_shares(
    values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Shares per bin (right-closed at the edges), plus a last bin for missing values."""
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="left"), minlength=edges.size + 1
    ).astype(np.float64)
    counts = np.append(counts, missing.sum())
    return counts / max(values.size, 1)


def numeric_drift(
    name: str, reference: npt.ArrayLike, current: npt.ArrayLike, *, bins: int = DEFAULT_BINS
) -> FeatureDrift:
    """KS test and PSI of a numeric feature (drifted is decided by `drift_report`)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref_known, cur_known = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref_known.size and cur_known.size:
        result = stats.ks_2samp(ref_known, cur_known)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic, p_value = math.nan, 1.0
    ref_missing, cur_missing = ref.size - ref_known.size, cur.size - cur_known.size
    if ref_missing or cur_missing:
        # A feature going missing (or coming back) is drift the KS test cannot see: test
        # the missing share too, and keep the smaller p-value, Bonferroni-corrected for two.
        table = np.array([[ref_missing, ref_known.size], [cur_missing, cur_known.size]])
        testable = (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all()
        missing_p = float(stats.chi2_contingency(table)[1]) if testable else 1.0
        p_value = min(1.0, 2 * min(p_value, missing_p))
    edges = numeric_bins(ref, bins=bins)
    value = psi(_numeric_shares(ref, edges), _numeric_shares(cur, edges))
    return FeatureDrift(
        feature=name, kind="numeric", test="ks", statistic=statistic, p_value=p_value,
        adjusted_p_value=p_value, psi=value, reference_rows=ref.size, current_rows=cur.size,
        drifted=False,
    )  # fmt: skip


def categorical_drift(
    name: str, reference: Iterable[object], current: Iterable[object]
) -> FeatureDrift:
    """Chi-squared test and PSI of a categorical feature over the union of categories."""
    ref = pd.Series(list(reference), dtype="object").fillna("<missing>")
    cur = pd.Series(list(current), dtype="object").fillna("<missing>")
    categories = sorted(set(ref) | set(cur), key=str)
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy(np.float64)
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy(np.float64)
    if len(categories) > 1 and ref_counts.sum() and cur_counts.sum():
        table = np.vstack([ref_counts, cur_counts])
        table = table[:, table.sum(axis=0) > 0]
        chi2, p_value, _, _ = stats.chi2_contingency(table)
        statistic, p = float(chi2), float(p_value)
    else:
        statistic, p = 0.0, 1.0
    value = psi(ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1))
    return FeatureDrift(
        feature=name, kind="categorical", test="chi2", statistic=statistic, p_value=p,
        adjusted_p_value=p, psi=value, reference_rows=ref.size, current_rows=cur.size,
        drifted=False,
    )  # fmt: skip


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    alpha: float = DEFAULT_ALPHA,
    min_psi: float = DEFAULT_MIN_PSI,
    bins: int = DEFAULT_BINS,
) -> list[FeatureDrift]:
    """Every feature compared with the reference, p-values adjusted together, verdicts set."""
    if not 0 < alpha < 1:
        msg = f"alpha must be between 0 and 1, got {alpha}"
        raise ValueError(msg)
    names = list(features) if features is not None else list(reference.columns)
    missing = [n for n in names if n not in reference.columns or n not in current.columns]
    if missing:
        msg = f"features missing from the reference or the current data: {missing}"
        raise ValueError(msg)
    categories = set(categorical)
    raw = [
        categorical_drift(n, reference[n], current[n])
        if n in categories
        else numeric_drift(n, reference[n], current[n], bins=bins)
        for n in names
    ]
    if not raw:
        return []
    adjusted = stats.false_discovery_control([r.p_value for r in raw], method="bh")
    return [
        FeatureDrift(
            **{
                **r.__dict__,
                "adjusted_p_value": float(p),
                "drifted": bool(p < alpha and r.psi >= min_psi),
            }
        )
        for r, p in zip(raw, np.atleast_1d(adjusted), strict=True)
    ]
