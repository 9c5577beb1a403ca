"""Feature spec: names per profile and vocabularies learned from training data."""

import copy

import pandas as pd
import pytest
from feature_frames import DAY, sparkov

from fraudops.data.profiles import FDH, SPARKOV, ULB
from fraudops.features.spec import (
    DEFAULT_FEATURE_GROUPS,
    FEATURE_GROUPS,
    MS_PER_DAY,
    FeatureSpec,
    fit_feature_spec,
)


def test_vocabularies_are_sorted_distinct_values_without_blanks() -> None:
    """Each category column gets its distinct non-blank values in sorted order."""
    frame = sparkov(
        {"s": 0, "category": "travel", "gender": "M"},
        {"s": 1, "category": "home", "gender": "F"},
        {"s": 2, "category": "travel", "gender": "M"},
        {"s": 3, "category": " ", "gender": "M"},
    )
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=0)
    assert {"category": ("home", "travel"), "gender": ("F", "M")} == spec.vocabularies


def test_vocabulary_keeps_only_the_most_frequent_values() -> None:
    """With a cap of 2, the two most frequent values are kept (ties broken by value)."""
    values = ["b"] * 3 + ["a"] * 2 + ["c"] * 2 + ["d"]
    frame = pd.DataFrame({"category": values, "gender": values})
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=0, max_vocabulary=2)
    assert ("a", "b") == spec.vocabularies["category"]


def test_vocabulary_columns_missing_from_the_frame_are_left_out() -> None:
    """A categorical column the training frame lacks gets no one-hot columns."""
    frame = pd.DataFrame({"category": ["home"]})
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=0)
    assert {"category": ("home",)} == spec.vocabularies
    assert "category=home" == spec.names[-1]


def test_negative_label_delay_is_refused() -> None:
    """A label cannot be known before its transaction happens."""
    with pytest.raises(ValueError, match="label delay"):
        fit_feature_spec(pd.DataFrame(), SPARKOV, label_delay_ms=-1)


@pytest.mark.parametrize(
    ("waits", "expected_days"),
    [
        (None, 7),  # no label times: the fixed rule
        ([600, 7 * DAY, 30 * DAY], 0),  # an analyst's verdict 10 minutes after
        ([7 * DAY, 7 * DAY, 7 * DAY], 7),  # a fixed-delay replay stored with label times
        ([8 * DAY, None, 20 * DAY], 7),  # chargebacks only, after the delay
        ([None, None, None], 7),  # no fraud label arrived yet
    ],
)
def test_label_windows_end_at_t_where_labels_arrive_before_the_delay(
    waits: list[int | None] | None, expected_days: int
) -> None:
    """Fitted on a frame whose fraud labels (some) arrive before the delay the lag is 0;
    without label times, or with every label the delay late or later, it is the delay."""
    frame = sparkov(
        {"s": 0, "is_fraud": 1}, {"s": DAY, "is_fraud": 1}, {"s": 2 * DAY, "is_fraud": 1}
    )
    if waits is not None:
        label_time = [
            pd.NaT if wait is None else event + pd.Timedelta(seconds=wait)
            for wait, event in zip(waits, frame["event_time"], strict=True)
        ]
        frame = frame.assign(label_time=pd.to_datetime(pd.Series(label_time)))
    week = 7 * MS_PER_DAY
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=week)
    assert expected_days * MS_PER_DAY == spec.label_lag_ms
    set_lag = fit_feature_spec(frame, SPARKOV, label_delay_ms=week, label_window_lag_ms=5)
    assert 5 == set_lag.label_lag_ms


def test_a_spec_pickled_before_the_lag_existed_keeps_the_delay_as_lag() -> None:
    """A spec without the lag field (an old pickle) ends its label windows the delay before."""
    spec = fit_feature_spec(pd.DataFrame({"category": ["home"]}), SPARKOV, label_delay_ms=5)
    old = copy.copy(spec)  # unpickling sets the saved fields on a bare instance, as copy does
    del old.__dict__["label_window_lag_ms"]
    assert 5 == old.label_lag_ms
    assert 0 == FeatureSpec(profile=SPARKOV, label_delay_ms=0).label_lag_ms
    assert 7 == FeatureSpec(profile=SPARKOV, label_delay_ms=7).label_lag_ms


def test_negative_label_window_lag_is_refused() -> None:
    """Label windows cannot end after t."""
    with pytest.raises(ValueError, match="label window lag"):
        FeatureSpec(profile=SPARKOV, label_delay_ms=0, label_window_lag_ms=-1)


def test_ulb_has_no_card_or_merchant_features() -> None:
    """Without card and merchant ids only the amount, calendar and V columns remain."""
    spec = FeatureSpec(profile=ULB, label_delay_ms=0)
    expected = (
        "amount",
        "log_amount",
        "hour",
        "weekday",
        "is_night",
        "is_weekend",
        *(f"V{i}" for i in range(1, 29)),
    )
    assert expected == spec.names


def test_fdh_has_velocity_and_risk_but_no_geo_age_or_category() -> None:
    """FDH has card and terminal ids and a label, and nothing else to use."""
    names = FeatureSpec(profile=FDH, label_delay_ms=0).names
    assert 6 + 19 + 3 + 3 == len(names)
    assert "merchant_risk_30d" == names[-1]
    assert not {"home_merchant_km", "age_years"} & set(names)


def test_feature_groups_default_to_the_kept_ones_when_fitted_and_to_none_unpickled() -> None:
    """fit_feature_spec switches on the kept groups; a bare spec (an old pickle) has none."""
    frame = pd.DataFrame({"category": ["home"]})
    assert DEFAULT_FEATURE_GROUPS == fit_feature_spec(frame, SPARKOV, label_delay_ms=0).groups
    assert frozenset() == FeatureSpec(profile=SPARKOV, label_delay_ms=0).groups


def test_unknown_feature_group_is_refused() -> None:
    """A misspelt group names the known ones."""
    with pytest.raises(ValueError, match="card_diversity"):
        FeatureSpec(profile=SPARKOV, label_delay_ms=0, groups=frozenset({"card_divers"}))


def test_ulb_gets_no_card_profile_features_whatever_the_groups() -> None:
    """Without a card id no card-profile group applies."""
    spec = FeatureSpec(profile=ULB, label_delay_ms=0, groups=frozenset(FEATURE_GROUPS))
    assert 6 + 28 == len(spec.names)
