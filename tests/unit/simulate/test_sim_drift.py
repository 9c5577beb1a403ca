"""Drift specs parse or fail clearly, and each kind changes the distribution it claims to."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sim_helpers import with_derived

from fraudops.simulate import (
    AmountDrift,
    CategoryDrift,
    DriftSpecError,
    ScenarioDrift,
    SimulationConfig,
    SimulationConfigError,
    parse_drift,
    simulate,
)

BASE = {"days": 30, "cards": 800, "seed": 6}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "scenario@20:name=card_testing,rate=0.01",
            ScenarioDrift(at=20, scenario="card_testing", rate=0.01),
        ),
        ("amount@30:factor=1.5", AmountDrift(at=30, factor=1.5)),
        (
            "amount@2024-02-01:factor=2,category=travel",
            AmountDrift(at=date(2024, 2, 1), factor=2.0, category="travel"),
        ),
        (
            "category@30:shopping_net=3,grocery_pos=0.5",
            CategoryDrift(at=30, factors=(("shopping_net", 3.0), ("grocery_pos", 0.5))),
        ),
        (" amount@0: factor = 1.1 ", AmountDrift(at=0, factor=1.1)),
    ],
)
def test_parse_drift_reads_each_kind(spec: str, expected: object) -> None:
    """Each documented spec parses into its event, day as offset or ISO date."""
    assert expected == parse_drift(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "scenario@20:name=stolen_credentials,rate=0.02",
        "amount@2024-03-01:factor=1.25,category=home",
    ],
)
def test_spec_round_trips(spec: str) -> None:
    """An event's spec parses back to the same event."""
    event = parse_drift(spec)
    assert event == parse_drift(event.spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("amount", "expected KIND@DAY"),
        ("amount@", "expected KIND@DAY"),
        ("weather@3:factor=2", "unknown kind 'weather'"),
        ("amount@soon:factor=2", "day 'soon' is neither"),
        ("amount@2024-13-01:factor=2", "day '2024-13-01' is neither"),
        ("amount@3:factor", "parameter 'factor' is not key=value"),
        ("amount@3:factor=x", "factor='x' is not a number"),
        ("amount@3:factor=-1", "amount factor must be a positive number"),
        ("amount@3:factor=2,factor=3", "parameter 'factor' is given twice"),
        ("amount@3:category=travel", "missing parameter factor="),
        ("amount@3:factor=2,category=boats", "unknown category 'boats'"),
        ("amount@3:factor=2,colour=red", "unknown parameter 'colour'"),
        ("scenario@3:rate=0.01", "missing parameter name="),
        ("scenario@3:name=phishing,rate=0.01", "unknown scenario 'phishing'"),
        ("scenario@3:name=card_testing", "missing parameter rate="),
        ("scenario@3:name=card_testing,rate=2", "rate must be in"),
        ("category@3", "needs at least one CATEGORY=FACTOR"),
        ("category@3:boats=2", "unknown category 'boats'"),
        ("category@3:travel=0", "factor for travel must be a positive number"),
    ],
)
def test_parse_drift_names_the_wrong_part(spec: str, message: str) -> None:
    """A bad spec fails with a DriftSpecError quoting the spec and naming the wrong part."""
    with pytest.raises(DriftSpecError, match=message) as caught:
        parse_drift(spec)
    assert str(caught.value).startswith(f"drift {spec!r}")


def test_config_rejects_drift_outside_the_period() -> None:
    """A drift day before the start or past the last day is refused."""
    with pytest.raises(
        SimulationConfigError, match=r"day 30 is outside the simulated days 0\.\.29"
    ):
        SimulationConfig(**BASE, drift=(parse_drift("amount@30:factor=2"),))
    with pytest.raises(SimulationConfigError, match="day -1 is outside"):
        SimulationConfig(**BASE, drift=(parse_drift("amount@2023-12-31:factor=2"),))


def _drifted(*specs: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The base frame and the same config with drift, both with derived columns."""
    base = with_derived(simulate(SimulationConfig(**BASE)))
    drift = tuple(parse_drift(s) for s in specs)
    return base, with_derived(simulate(SimulationConfig(**BASE, drift=drift)))


def test_amount_drift_scales_amounts_from_its_day_only() -> None:
    """amount@15:factor=1.5 leaves earlier amounts alone and multiplies later ones by 1.5."""
    base, drifted = _drifted("amount@15:factor=1.5")
    before, after = base["day"] < 15, base["day"] >= 15
    assert (base.loc[before, "amt"] == drifted.loc[before, "amt"]).all()
    ratio = drifted.loc[after, "amt"].mean() / base.loc[after, "amt"].mean()
    assert ratio == pytest.approx(1.5, abs=0.01)


def test_amount_drift_can_target_one_category() -> None:
    """amount@10:factor=2,category=travel doubles travel amounts only."""
    base, drifted = _drifted("amount@10:factor=2,category=travel")
    after = base["day"] >= 10
    travel = after & (base["category"] == "travel")
    ratio = drifted.loc[travel, "amt"].sum() / base.loc[travel, "amt"].sum()
    assert ratio == pytest.approx(2.0, abs=0.01)
    others = after & (base["category"] != "travel")
    assert (base.loc[others, "amt"] == drifted.loc[others, "amt"]).all()


def test_category_drift_shifts_the_mix_from_its_day() -> None:
    """category@15:shopping_net=3,grocery_pos=0.5 more than doubles shopping_net's share after."""
    base, drifted = _drifted("category@15:shopping_net=3,grocery_pos=0.5")

    def share(frame: pd.DataFrame, category: str, *, after: bool) -> float:
        legit = frame[(frame["is_fraud"] == 0) & ((frame["day"] >= 15) == after)]
        return float((legit["category"] == category).mean())

    assert share(base, "shopping_net", after=False) == pytest.approx(
        share(drifted, "shopping_net", after=False), abs=0.005
    )
    assert share(drifted, "shopping_net", after=True) > 2 * share(base, "shopping_net", after=True)
    assert share(drifted, "grocery_pos", after=True) < 0.6 * share(base, "grocery_pos", after=True)


def test_scenario_drift_raises_fraud_of_that_scenario_from_its_day() -> None:
    """scenario@15:name=card_testing,rate=0.02 adds about 2% card testing after day 15 only."""
    base, drifted = _drifted("scenario@15:name=card_testing,rate=0.02")
    before, after = drifted["day"] < 15, drifted["day"] >= 15
    assert drifted.loc[before, "is_fraud"].mean() == pytest.approx(
        base.loc[base["day"] < 15, "is_fraud"].mean(), abs=0.002
    )
    testing_after = (drifted.loc[after, "fraud_scenario"] == "card_testing").mean()
    testing_base = (base.loc[base["day"] >= 15, "fraud_scenario"] == "card_testing").mean()
    assert testing_after - testing_base == pytest.approx(0.02, abs=0.003)
    first_extra = drifted.loc[drifted["fraud_scenario"] == "card_testing", "day"]
    assert np.count_nonzero(first_extra >= 15) > 0.9 * len(first_extra)
