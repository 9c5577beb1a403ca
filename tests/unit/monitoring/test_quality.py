"""Grading of the data-quality checks: limits, the daily-volume judgement, the JSON form."""

import json
import math
from datetime import datetime, timedelta

import pandas as pd
import pytest

from fraudops.monitoring.quality import (
    Check,
    DayVolume,
    QualityLimits,
    QualityReport,
    Threshold,
    judge_volume,
    label_coverage_check,
    run_quality,
)
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import LabelRecord, Warehouse
from warehouse_fill import store_served

MONDAY = datetime(2026, 3, 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, ("ok", 0.01)), (0.01, ("ok", 0.01)), (0.02, ("warn", 0.01)), (0.2, ("fail", 0.05))],
)
def test_a_value_is_graded_by_the_highest_limit_it_crosses(
    value: float, expected: tuple[str, float]
) -> None:
    """At a limit is still within it; above warn warns, above fail fails."""
    assert expected == Threshold(warn=0.01, fail=0.05).grade(value)


def test_a_warn_only_threshold_never_fails() -> None:
    """Duplicates and late arrivals warn at most."""
    assert ("warn", 0.001) == Threshold(warn=0.001).grade(1.0)


def week(counts: list[int], baseline: list[list[int]]) -> list[DayVolume]:
    """Seven days of counts, each with the same weekday's counts of earlier weeks."""
    return [
        DayVolume(start=MONDAY + timedelta(days=i), count=c, baseline=tuple(b))
        for i, (c, b) in enumerate(zip(counts, baseline, strict=True))
    ]


def test_small_days_off_by_chance_do_not_alarm() -> None:
    """6 transactions on a day that usually has 14 is half, but chance explains it (p > 0.001)."""
    days = week([14, 6, 15, 13, 22, 14, 12], [[14, 13, 15, 14]] * 7)
    check = judge_volume(days, QualityLimits())
    assert ("ok", 1.0) == (check.status, check.value)
    assert "7 days judged, each within chance of its usual volume" == check.detail


def test_a_lost_day_fails_and_a_doubled_day_warns() -> None:
    """An empty day fails (x14 below); a day at 2.5x its usual count warns."""
    usual = [[1000, 980, 1020, 1010]] * 7
    lost = judge_volume(week([1000, 0, 1000, 1000, 1000, 1000, 1000], usual), QualityLimits())
    assert ("fail", 1005.0, 5.0) == (lost.status, lost.value, lost.limit)
    assert "2026-03-03 00:00 +24h, 0 transactions, below the usual 1005" in lost.detail
    doubled = judge_volume(week([1000, 1000, 2500, 1000, 990, 1000, 1000], usual), QualityLimits())
    assert ("warn", pytest.approx(2500 / 1005), 2.0) == (
        doubled.status,
        doubled.value,
        doubled.limit,
    )
    assert "above the usual 1005" in doubled.detail


def test_no_earlier_weeks_means_no_volume_judgement() -> None:
    """A first week has nothing to compare with: ok, without a value, saying why."""
    check = judge_volume(week([5] * 7, [[]] * 7), QualityLimits())
    assert ("ok", None) == (check.status, check.value)
    assert "no earlier weeks" in check.detail


def test_the_report_fails_when_any_check_fails_and_its_json_has_no_infinity() -> None:
    """The worst check decides; non-finite values are written as null."""
    checks = (
        Check(name="a", status="ok", value=0.0, limit=0.01, detail=""),
        Check(name="b", status="warn", value=math.inf, limit=2.0, detail="", unit="factor"),
    )
    report = QualityReport(
        as_of=MONDAY,
        start=MONDAY - timedelta(days=7),
        label_delay_days=7.0,
        transactions=3,
        checks=checks,
    )
    assert ("warn", False) == (report.status, report.failed)
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["checks"][1]["value"] is None
    failing = QualityReport(
        as_of=MONDAY,
        start=MONDAY,
        label_delay_days=7.0,
        transactions=0,
        checks=(*checks, Check(name="c", status="fail", value=1.0, limit=0.2, detail="")),
    )
    assert ("fail", True) == (failing.status, failing.failed)
    with pytest.raises(KeyError):
        failing.check("missing")


def test_label_coverage_counts_slow_fraud_labels_as_immature_not_missing(
    warehouse: Warehouse,
) -> None:
    """Legitimate transactions labelled within the hour, frauds 5 days late, under a 2-day
    delay: coverage judges the week ending 5 days before as_of (every label there), and
    counts the younger transactions as immature; the fixed delay would call frauds missing."""
    simulated = simulate(SimulationConfig(days=21, cards=100, seed=5, fraud_rate=0.02))
    store_served(warehouse, simulated, label_days=5)
    times = pd.to_datetime(simulated["trans_date_trans_time"])
    legit = simulated["is_fraud"] == 0
    warehouse.record_labels(
        [
            LabelRecord(trans_num=t, is_fraud=False, label_time=at + timedelta(hours=1))
            for t, at in zip(simulated.loc[legit, "trans_num"], times[legit], strict=True)
        ]
    )
    as_of = datetime(2024, 1, 21)

    report = run_quality(warehouse, as_of=as_of, days=7, label_delay_days=2)

    matured = int(
        ((times >= as_of - timedelta(days=12)) & (times < as_of - timedelta(days=5))).sum()
    )
    immature = int(((times >= as_of - timedelta(days=5)) & (times < as_of)).sum())
    coverage = report.check("unlabelled")
    assert ("ok", 0.0) == (coverage.status, coverage.value)
    assert coverage.detail.startswith(f"0 of {matured} matured")
    assert f"{immature} younger left out as immature" in coverage.detail
    document = json.loads(json.dumps(report.to_dict()))
    assert (5.0, 2.0, "observed", immature) == (
        document["maturity"]["age_days"],
        document["maturity"]["delay_days"],
        document["maturity"]["source"],
        document["maturity"]["immature"],
    )
    fixed_end = as_of - timedelta(days=2)
    late = ((times >= as_of - timedelta(days=5)) & (times < fixed_end) & ~legit).sum()
    fixed = label_coverage_check(
        warehouse,
        start=fixed_end - timedelta(days=7),
        end=fixed_end,
        known_by=as_of,
        limits=QualityLimits(),
    )
    assert late > 0
    assert fixed.detail.startswith(f"{late} of ")


def test_by_default_the_window_ends_with_the_latest_transaction_included(
    warehouse: Warehouse,
) -> None:
    """Without as_of the window ends at the event clock, the latest transaction among those
    checked: one stored transaction is a volume of one, not "no transactions stored"."""
    one = simulate(SimulationConfig(days=1, cards=5, seed=3)).head(1)
    store_served(warehouse, one, label_days=1)

    report = run_quality(warehouse, days=7)

    assert 1 == report.transactions
    assert "no transactions stored" not in report.check("volume").detail
