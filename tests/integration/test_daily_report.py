"""The daily operations report on a real warehouse (SQLite and PostgreSQL)."""

import io
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy
from rich.console import Console

from fraudops.monitoring.daily import daily_report, render_daily
from fraudops.storage import LabelRecord, Warehouse
from warehouse_fill import store_day, store_served

DAY = date(2024, 3, 10)


def test_a_hand_made_day_gives_the_hand_computed_figures(warehouse: Warehouse) -> None:
    """d1..d7 of DAY_ROWS are the day; the rows a second before and at midnight after are not."""
    store_day(warehouse)
    report = daily_report(warehouse, DAY).to_dict()
    assert 7 == report["transactions"]
    assert {"count": 7, "amount": 760.0} == report["scored"]
    assert {"count": 3, "amount": 290.0} == report["reviews"]  # d3, d4, d7
    assert {"count": 2, "amount": 320.0} == report["declines"]  # d5, d6
    assert {"count": 3, "amount": 550.0} == report["frauds_confirmed"]  # d2, d3, d5
    alerts = report["alerts"]
    assert 5 == alerts["count"]
    assert 610.0 == alerts["amount"]
    assert 4 == alerts["labelled"]  # d3, d4, d5, d7
    assert {"analyst": 3, "chargeback": 1} == alerts["labelled_by_source"]
    assert 2 == alerts["frauds"]  # d3, d5
    # Hours to label 1, 2, 4, 48: median (2 + 4) / 2; p90 at rank 2.7: 4 + 0.7 * 44.
    assert 3.0 == alerts["time_to_label"]["median_hours"]
    assert pytest.approx(34.8) == alerts["time_to_label"]["p90_hours"]
    precision = alerts["precision"]
    assert 0.5 == precision["value"]
    # Wilson at 95 % for 2 of 4: 0.5 -+ 1.96 * sqrt(0.0625 + 0.0600) / 1.9604.
    assert pytest.approx(0.1500, abs=1e-3) == precision["low"]
    assert pytest.approx(0.8500, abs=1e-3) == precision["high"]
    assert [
        ("3", 4, "2024-03-10T01:00:01", "2024-03-10T08:00:01"),
        ("4", 3, "2024-03-10T10:00:01", "2024-03-11T00:00:00"),
    ] == [
        (m["model_version"], m["scored"], m["first_scored_at"], m["last_scored_at"])
        for m in report["models"]
    ]


def test_a_changed_label_counts_as_it_stands(warehouse: Warehouse) -> None:
    """d4, labelled legitimate, is later confirmed fraud: 3 frauds of 4 labelled alerts."""
    store_day(warehouse)
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num="d4",
                is_fraud=True,
                label_time=datetime(2024, 3, 10, 14),
                source="chargeback",
            )
        ]
    )
    alerts = daily_report(warehouse, DAY).to_dict()["alerts"]
    assert (4, 3, 0.75) == (alerts["labelled"], alerts["frauds"], alerts["precision"]["value"])
    assert {"analyst": 2, "chargeback": 2} == alerts["labelled_by_source"]
    assert {"count": 4, "amount": 630.0} == daily_report(warehouse, DAY).to_dict()[
        "frauds_confirmed"
    ]


def test_the_readable_report_shows_the_figures(warehouse: Warehouse) -> None:
    """The terminal view names the day, the figures and the versions."""
    store_day(warehouse)
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(render_daily(daily_report(warehouse, DAY)))
    text = console.export_text()
    assert "Daily operations report 2024-03-10" in text
    assert "760.00" in text
    assert "4 of 5" in text
    assert "50.0% [15.0%, 85.0%]" in text
    assert "analyst 3, chargeback 1" in text


def test_a_day_without_data_says_so(warehouse: Warehouse) -> None:
    """No transaction that day: zero counts, no precision, no wait, and the view says so."""
    store_day(warehouse)
    report = daily_report(warehouse, date(2024, 3, 12))
    assert report.empty
    document = report.to_dict()
    assert {"count": 0, "amount": 0.0} == document["scored"]
    assert None is document["alerts"]["precision"]["value"]
    assert None is document["alerts"]["time_to_label"]["median_hours"]
    assert [] == document["models"]
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(render_daily(report))
    assert "No transaction is stored for 2024-03-12" in console.export_text()


def test_a_day_of_the_real_sample_matches_pandas(warehouse: Warehouse, sample_path: Path) -> None:
    """Served with a placeholder approval and frauds labelled later: the day's counts, amounts
    and frauds are those pandas finds in the file; no alert, so no precision."""
    frame = pd.read_csv(sample_path)
    frame = frame[[c for c in frame.columns if c and not c.startswith("Unnamed")]]
    frame["fraud_scenario"] = None  # what store_served drops from simulated frames
    store_served(warehouse, frame, label_days=3)
    times = pd.to_datetime(frame["trans_date_trans_time"])
    day = times.dt.date.value_counts().idxmax()
    inside = frame[times.dt.date == day]
    frauds = inside[inside["is_fraud"] == 1]
    report = daily_report(warehouse, day).to_dict()
    assert len(inside) == report["scored"]["count"]
    assert round(float(inside["amt"].sum()), 2) == pytest.approx(report["scored"]["amount"])
    assert len(frauds) == report["frauds_confirmed"]["count"]
    assert round(float(frauds["amt"].sum()), 2) == pytest.approx(
        report["frauds_confirmed"]["amount"]
    )
    assert 0 == report["alerts"]["count"]
    assert None is report["alerts"]["precision"]["value"]
    assert [("0", len(inside))] == [(m["model_version"], m["scored"]) for m in report["models"]]
    assert datetime(2024, 1, 1).isoformat() == report["models"][0]["first_scored_at"]


def test_on_sqlite_every_join_on_scores_looks_the_transaction_up(tmp_path: Path) -> None:
    """SQLite has no statistics: an index starting with `role` once made it join scores on
    `role = 'champion'` alone, reading every champion score per transaction (a day's report
    of the demo's warehouse ran for minutes). Every statement of the report must find a
    transaction's scores through trans_num."""
    warehouse = Warehouse(f"sqlite:///{(tmp_path / 'warehouse.db').as_posix()}")
    warehouse.migrate()
    store_day(warehouse)
    statements: list[str] = []

    def keep(*args: object) -> None:
        statements.append(str(args[2]))

    sqlalchemy.event.listen(warehouse.engine, "before_cursor_execute", keep)
    try:
        daily_report(warehouse, DAY)
    finally:
        sqlalchemy.event.remove(warehouse.engine, "before_cursor_execute", keep)
    joins = [s for s in statements if "JOIN scores" in s]
    assert joins
    with warehouse.engine.connect() as connection:
        for statement in joins:
            parameters = tuple([DAY.isoformat()] * statement.count("?"))
            plan = [str(row[3]) for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)]  # fmt: skip
            scores = [step for step in plan if " scores " in f" {step} "]
            assert scores and all("trans_num=?" in step for step in scores), plan
    warehouse.dispose()
