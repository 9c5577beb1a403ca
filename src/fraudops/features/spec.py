"""What the model sees: one feature specification, shared by the batch and online engines.

Every feature of a transaction at time t uses only events strictly before t (events at the
same instant never see each other, whatever their arrival order) and a label only once its
transaction is `label_delay` old. Identifiers, names and streets are never features.

Windows are half-open, [t - W, t). Times are epoch milliseconds (naive times read as UTC).
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from fraudops.data.profiles import DatasetProfile

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR

CARD_WINDOWS: dict[str, int] = {
    "1h": MS_PER_HOUR,
    "1d": MS_PER_DAY,
    "7d": 7 * MS_PER_DAY,
    "30d": 30 * MS_PER_DAY,
}
MERCHANT_WINDOWS: dict[str, int] = {
    "1d": MS_PER_DAY,
    "7d": 7 * MS_PER_DAY,
    "30d": 30 * MS_PER_DAY,
}
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5})
# One-hot columns per categorical feature at most: the most frequent values in training.
MAX_VOCABULARY = 50


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """The features a profile supports, with the vocabularies learned from training data."""

    profile: DatasetProfile
    label_delay_ms: int
    # Category and extra categorical columns: column -> known values (one-hot; unknown -> 0s).
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def has_card(self) -> bool:
        """Per-card velocity features need a card id."""
        return self.profile.card_id is not None

    @property
    def has_merchant(self) -> bool:
        """Per-merchant counts need a merchant id."""
        return self.profile.merchant_id is not None

    @property
    def has_merchant_risk(self) -> bool:
        """Merchant fraud risk needs a merchant id and a label."""
        return self.has_merchant and self.profile.label is not None

    @property
    def has_geo(self) -> bool:
        """Home-to-merchant distance needs both coordinate pairs."""
        return self.profile.geo is not None

    @property
    def has_age(self) -> bool:
        """Age at transaction time needs a birth date."""
        return self.profile.birth_date is not None

    @cached_property
    def input_columns(self) -> tuple[str, ...]:
        """The profile columns the features read from a transaction (computed once)."""
        profile = self.profile
        names = [
            profile.id_column,
            profile.card_id,
            profile.merchant_id,
            profile.amount,
            profile.birth_date,
            *profile.numeric,
            *self.vocabularies,
        ]
        if profile.geo is not None:
            geo = profile.geo
            names += [geo.lat, geo.long, geo.merch_lat, geo.merch_long]
        return tuple(dict.fromkeys(name for name in names if name is not None))

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Feature names in the column order of every feature matrix (computed once)."""
        names = ["amount", "log_amount", "hour", "weekday", "is_night", "is_weekend"]
        if self.has_card:
            for window in CARD_WINDOWS:
                names += [
                    f"card_count_{window}",
                    f"card_amount_sum_{window}",
                    f"card_amount_mean_{window}",
                    f"card_amount_max_{window}",
                ]
            names += [
                "card_amount_ratio_mean_30d",
                "card_amount_zscore_30d",
                "card_seconds_since_previous",
            ]
        if self.has_merchant:
            names += [f"merchant_count_{window}" for window in MERCHANT_WINDOWS]
        if self.has_merchant_risk:
            names += [f"merchant_risk_{window}" for window in MERCHANT_WINDOWS]
        if self.has_geo:
            names.append("home_merchant_km")
        if self.has_age:
            names.append("age_years")
        names += list(self.profile.numeric)
        for column, values in self.vocabularies.items():
            names += [f"{column}={value}" for value in values]
        return tuple(names)


def fit_feature_spec(
    frame: pd.DataFrame,
    profile: DatasetProfile,
    *,
    label_delay_ms: int,
    max_vocabulary: int = MAX_VOCABULARY,
) -> FeatureSpec:
    """The spec for a profile, with vocabularies learned from the training frame.

    Each category and extra categorical column the frame has gets its most frequent
    non-blank values (at most `max_vocabulary`, ties by value), listed in sorted order.
    """
    if label_delay_ms < 0:
        msg = f"label delay must not be negative, got {label_delay_ms} ms"
        raise ValueError(msg)
    vocabularies: dict[str, tuple[str, ...]] = {}
    for column in dict.fromkeys(c for c in (profile.category, *profile.categorical) if c):
        if column in frame.columns:
            vocabularies[column] = _vocabulary(frame[column], limit=max_vocabulary)
    return FeatureSpec(profile=profile, label_delay_ms=label_delay_ms, vocabularies=vocabularies)


def _vocabulary(values: "pd.Series[Any]", *, limit: int) -> tuple[str, ...]:
    """The `limit` most frequent non-blank values as text, sorted."""
    text = values.dropna().astype("str")
    counts = text[text.str.strip().ne("")].value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return tuple(sorted(str(value) for value, _ in ranked[:limit]))
