"""Reason sentences: every feature family in words a fraud reviewer reads at a glance."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudops.data.profiles import SPARKOV
from fraudops.features.spec import MS_PER_DAY, FeatureSpec
from fraudops.scoring.reasons import describe

TIMES = "\N{MULTIPLICATION SIGN}"
SPEC = FeatureSpec(
    profile=SPARKOV,
    label_delay_ms=7 * MS_PER_DAY,
    vocabularies={"category": ("grocery_pos", "shopping_net"), "gender": ("F", "M")},
)


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("amount", 1243.5, "amount 1,243.50"),
        ("log_amount", math.log1p(1243.5), "amount 1,243.50"),
        ("hour", 2.0, "purchase at 02:00 (night)"),
        ("hour", 14.0, "purchase at 14:00"),
        ("weekday", 5.0, "purchase on a Saturday"),
        ("is_night", 1.0, "purchase at night (22:00 to 06:00)"),
        ("is_night", 0.0, "purchase in the daytime (06:00 to 22:00)"),
        ("is_weekend", 1.0, "purchase at the weekend"),
        ("is_weekend", 0.0, "purchase on a weekday"),
        ("card_count_1h", 6.0, "6 earlier purchases on this card in the last hour"),
        ("card_count_1d", 1.0, "1 earlier purchase on this card in the last 24 hours"),
        ("card_count_7d", 0.0, "no earlier purchase on this card in the last 7 days"),
        ("card_amount_sum_1d", 2480.0, "2,480.00 spent on this card in the last 24 hours"),
        ("card_amount_sum_1h", 0.0, "nothing spent on this card in the last hour"),
        ("card_amount_mean_30d", 45.2, "this card's average purchase in the last 30 days: 45.20"),
        ("card_amount_mean_1h", None, "no earlier purchase on this card in the last hour"),
        ("card_amount_max_7d", 310.0, "this card's largest purchase in the last 7 days: 310.00"),
        ("card_amount_ratio_mean_30d", 8.2, f"amount is 8.2{TIMES} this card's 30-day average"),
        ("card_amount_ratio_mean_30d", 143.0, f"amount is 143{TIMES} this card's 30-day average"),
        (
            "card_amount_ratio_mean_30d",
            None,
            "no purchase on this card in the last 30 days to compare the amount with",
        ),
        (
            "card_amount_zscore_30d",
            4.1,
            "amount is 4.1 standard deviations above this card's 30-day average",
        ),
        (
            "card_amount_zscore_30d",
            -0.5,
            "amount is 0.5 standard deviations below this card's 30-day average",
        ),
        ("card_seconds_since_previous", None, "first purchase seen on this card"),
        ("card_seconds_since_previous", 12.0, "12 s since this card's previous purchase"),
        ("card_seconds_since_previous", 900.0, "15 min since this card's previous purchase"),
        ("card_seconds_since_previous", 12_600.0, "3.5 h since this card's previous purchase"),
        ("card_seconds_since_previous", 345_600.0, "4 days since this card's previous purchase"),
        ("merchant_count_30d", 143.0, "143 earlier purchases at this merchant in the last 30 days"),
        ("merchant_count_1d", 0.0, "no earlier purchase at this merchant in the last 24 hours"),
        ("merchant_risk_7d", 0.18, "merchant's fraud rate over 7 days (with label delay): 18%"),
        ("merchant_risk_30d", 0.025, "merchant's fraud rate over 30 days (with label delay): 2.5%"),
        (
            "merchant_risk_1d",
            0.004,
            "merchant's fraud rate over 24 hours (with label delay): 0.40%",
        ),
        (
            "merchant_risk_7d",
            None,
            "merchant's fraud rate over 7 days (with label delay): unknown (no labelled purchases)",
        ),
        (
            "card_known_frauds_30d",
            2.0,
            "2 confirmed frauds on this card over 30 days (with label delay)",
        ),
        ("card_days_since_known_fraud", 8.5, "8 days since this card's last confirmed fraud"),
        ("card_days_since_known_fraud", None, "no confirmed fraud known on this card"),
        (
            "card_new_merchant_30d",
            1.0,
            "first purchase of this card at this merchant in the last 30 days",
        ),
        ("card_distinct_merchants_1d", 4.0, "this card used 4 merchants in the last 24 hours"),
        ("card_distinct_categories_7d", 1.0, "this card bought in 1 category in the last 7 days"),
        (
            "card_category_amount_ratio_30d",
            12.0,
            f"amount is 12{TIMES} this card's 30-day average in this category",
        ),
        (
            "card_hour_similarity_30d",
            -0.4,
            "an unusual hour for this card (similarity -0.40 over the last 30 days)",
        ),
        ("home_merchant_km", 143.4, "merchant 143 km from the cardholder's home"),
        ("home_merchant_km", 4.23, "merchant 4.2 km from the cardholder's home"),
        ("age_years", 81.7, "cardholder aged 81"),
        ("age_years", None, "cardholder's age unknown"),
        ("city_pop", 1234.0, "cardholder's city has 1,234 inhabitants"),
        ("category=shopping_net", 1.0, "category: shopping_net"),
        ("category=grocery_pos", 0.0, "category not grocery_pos"),
        ("gender=F", 1.0, "cardholder gender: F"),
        ("V1", 1.5, "V1 = 1.5"),
        ("V1", None, "V1 = missing"),
        ("card_count_2h", 3.0, "3 earlier purchases on this card in the last 2 hours"),
        ("card_count_week", 3.0, "card_count_week = 3"),
        ("amount", math.inf, "amount = inf"),
    ],
)
def test_describe_says_each_feature_in_plain_words(
    feature: str, value: float | None, expected: str
) -> None:
    """Each feature family and value reads as the expected reviewer sentence."""
    assert expected == describe(feature, value)


def test_nan_reads_like_a_missing_value() -> None:
    """NaN and None give the same sentence (no "nan" shown to a reviewer)."""
    for feature in SPEC.names:
        assert describe(feature, None) == describe(feature, math.nan)


def test_every_feature_of_the_sparkov_spec_has_its_own_sentence() -> None:
    """No spec feature falls back to "name = value", with a value or missing."""
    for feature in SPEC.names:
        for value in (0.0, 1.0, 3.5, None):
            assert not describe(feature, value).startswith(f"{feature} =")


@given(value=st.one_of(st.none(), st.floats()), column=st.integers(0, len(SPEC.names) - 1))
def test_describe_answers_any_value_with_a_sentence(value: float | None, column: int) -> None:
    """Any float, infinite or NaN, gives a non-empty sentence without "nan", the same each time."""
    text = describe(SPEC.names[column], value)
    assert text
    assert "nan" not in text.lower()
    assert text == describe(SPEC.names[column], value)
