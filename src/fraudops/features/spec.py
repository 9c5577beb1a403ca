"""What the model sees: one feature specification, shared by the batch and online engines.

Every feature of a transaction at time t uses only events strictly before t (events at the
same instant never see each other, whatever their arrival order) and a label only once it is
known (`labels.label_known`: from its label time where the data has one, else once its
transaction is `label_delay` old); merchant risk and the card's fraud history count the
known frauds of windows that end the spec's label lag before t: 0 for a spec fitted on data
whose labels arrive before the delay (a fraud confirmed a minute ago counts), `label_delay`
for data without label times or whose labels all come the delay after (the fixed rule,
under which nothing younger is known anyway). Identifiers, names and streets are never
features.

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
# The card-profile windows (each no wider than the card state's horizon).
CARD_HISTORY_MS = 30 * MS_PER_DAY
CARD_DIVERSITY_WINDOWS: dict[str, int] = {"1d": MS_PER_DAY, "7d": 7 * MS_PER_DAY}

# Optional feature groups, each switched on in the spec: the card's known fraud history, a
# first purchase at a merchant, the variety of merchants and categories, the amount against
# the card's usual one in the category, the hour against the card's usual hours.
FEATURE_GROUPS = (
    "card_fraud_history",
    "card_merchant_novelty",
    "card_diversity",
    "card_category_amount",
    "card_hour_profile",
)
# The groups a newly fitted spec switches on: those the feature-gain backtest kept
# (benchmarks/results/feature_gain.json; card_category_amount added 0.001 of average
# precision, below the bar, for the costliest online read).
DEFAULT_FEATURE_GROUPS: frozenset[str] = frozenset(FEATURE_GROUPS) - {"card_category_amount"}


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """The features a profile supports, with the vocabularies learned from training data."""

    profile: DatasetProfile
    label_delay_ms: int
    # Category and extra categorical columns: column -> known values (one-hot; unknown -> 0s).
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Optional feature groups switched on (FEATURE_GROUPS). Empty by default: a spec pickled
    # before the groups existed reads this class default, and keeps its features.
    groups: frozenset[str] = frozenset()
    # How long before t the label windows end (`label_lag_ms`). None: `label_delay_ms`, the
    # fixed rule, which a spec pickled before the lag existed reads from this class default.
    label_window_lag_ms: int | None = None

    def __post_init__(self) -> None:
        if self.label_window_lag_ms is not None and self.label_window_lag_ms < 0:
            msg = f"the label window lag must not be negative, got {self.label_window_lag_ms} ms"
            raise ValueError(msg)
        unknown = sorted(set(self.groups) - set(FEATURE_GROUPS))
        if unknown:
            msg = f"unknown feature groups {unknown}; known: {', '.join(FEATURE_GROUPS)}"
            raise ValueError(msg)

    @property
    def label_lag_ms(self) -> int:
        """How long before t the windows of merchant risk and the card's fraud history end."""
        return self.label_delay_ms if self.label_window_lag_ms is None else self.label_window_lag_ms

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
    def has_card_fraud_history(self) -> bool:
        """The card's known frauds need the group, a card id and a label."""
        return (
            "card_fraud_history" in self.groups and self.has_card and self.profile.label is not None
        )

    @property
    def has_card_merchant_novelty(self) -> bool:
        """A first purchase at a merchant needs the group, a card id and a merchant id."""
        return "card_merchant_novelty" in self.groups and self.has_card and self.has_merchant

    @property
    def has_card_merchant_diversity(self) -> bool:
        """Distinct merchants of a card need the diversity group, a card id and a merchant id."""
        return "card_diversity" in self.groups and self.has_card and self.has_merchant

    @property
    def has_card_category_diversity(self) -> bool:
        """Distinct categories of a card need the diversity group, a card id and a category."""
        return "card_diversity" in self.groups and self.has_card and self.has_category

    @property
    def has_card_category_amount(self) -> bool:
        """The amount against the card's usual one in a category needs a card and a category."""
        return "card_category_amount" in self.groups and self.has_card and self.has_category

    @property
    def has_card_hour_profile(self) -> bool:
        """The hour against the card's usual hours needs the group and a card id."""
        return "card_hour_profile" in self.groups and self.has_card

    @property
    def has_category(self) -> bool:
        """The profile names a category column."""
        return self.profile.category is not None

    @property
    def has_card_profile(self) -> bool:
        """Whether any card-profile feature (an optional group) is on."""
        return any(
            (
                self.has_card_fraud_history,
                self.has_card_merchant_novelty,
                self.has_card_merchant_diversity,
                self.has_card_category_diversity,
                self.has_card_category_amount,
                self.has_card_hour_profile,
            )
        )

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
            profile.category if self.has_card else None,
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
        names += self._card_profile_names()
        if self.has_geo:
            names.append("home_merchant_km")
        if self.has_age:
            names.append("age_years")
        names += list(self.profile.numeric)
        for column, values in self.vocabularies.items():
            names += [f"{column}={value}" for value in values]
        return tuple(names)

    def _card_profile_names(self) -> list[str]:
        """The optional card-profile features switched on, in column order."""
        names: list[str] = []
        if self.has_card_fraud_history:
            names += ["card_known_frauds_30d", "card_days_since_known_fraud"]
        if self.has_card_merchant_novelty:
            names.append("card_new_merchant_30d")
        if self.has_card_merchant_diversity:
            names += [f"card_distinct_merchants_{window}" for window in CARD_DIVERSITY_WINDOWS]
        if self.has_card_category_diversity:
            names += [f"card_distinct_categories_{window}" for window in CARD_DIVERSITY_WINDOWS]
        if self.has_card_category_amount:
            names.append("card_category_amount_ratio_30d")
        if self.has_card_hour_profile:
            names.append("card_hour_similarity_30d")
        return names


def fit_feature_spec(
    frame: pd.DataFrame,
    profile: DatasetProfile,
    *,
    label_delay_ms: int,
    max_vocabulary: int = MAX_VOCABULARY,
    groups: frozenset[str] = DEFAULT_FEATURE_GROUPS,
    label_window_lag_ms: int | None = None,
) -> FeatureSpec:
    """The spec for a profile, with vocabularies learned from the training frame.

    Each category and extra categorical column the frame has gets its most frequent
    non-blank values (at most `max_vocabulary`, ties by value), listed in sorted order.
    The label windows end `label_window_lag_ms` before t; by default 0 where the frame's
    labels arrive before the delay (features.labels.label_window_lag_ms: a label counts from
    its label time), else the label delay.
    """
    if label_delay_ms < 0:
        msg = f"label delay must not be negative, got {label_delay_ms} ms"
        raise ValueError(msg)
    vocabularies: dict[str, tuple[str, ...]] = {}
    for column in dict.fromkeys(c for c in (profile.category, *profile.categorical) if c):
        if column in frame.columns:
            vocabularies[column] = _vocabulary(frame[column], limit=max_vocabulary)
    return FeatureSpec(
        profile=profile,
        label_delay_ms=label_delay_ms,
        vocabularies=vocabularies,
        groups=frozenset(groups),
        label_window_lag_ms=(
            label_window_lag_ms
            if label_window_lag_ms is not None
            else _fitted_label_window_lag_ms(frame, profile, label_delay_ms=label_delay_ms)
        ),
    )


def _fitted_label_window_lag_ms(
    frame: pd.DataFrame, profile: DatasetProfile, *, label_delay_ms: int
) -> int:
    """The label lag the training frame calls for (features.labels.label_window_lag_ms)."""
    # Imported here: features.labels reaches this module's constants through formulas.
    from fraudops.features.labels import label_window_lag_ms  # noqa: PLC0415

    return label_window_lag_ms(frame, profile, label_delay_ms=label_delay_ms)


def _vocabulary(values: "pd.Series[Any]", *, limit: int) -> tuple[str, ...]:
    """The `limit` most frequent non-blank values as text, sorted."""
    text = values.dropna().astype("str")
    counts = text[text.str.strip().ne("")].value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return tuple(sorted(str(value) for value, _ in ranked[:limit]))
