"""Weekly data-quality checks on a real warehouse (SQLite and PostgreSQL) filled from the sample."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from rich.console import Console

from fraudops.monitoring.quality import MODEL_FIELDS, render_quality, run_quality
from fraudops.storage import LabelRecord, ScoredTransaction, ScoreRecord, Warehouse
from fraudops.storage.tables import ScoreRow

AS_OF = datetime(2020, 6, 1)
WEEK = timedelta(days=7)
BAD_ROWS = 30
DUPLICATES = 5
UNSCORED = 10


@pytest.fixture(scope="module")
def sample(sample_path: Path) -> pd.DataFrame:
    """The real sample as text records (index columns dropped) with their event time."""
    raw = pd.read_csv(sample_path, dtype=str, keep_default_na=False)
    raw = raw[[c for c in raw.columns if not c.startswith("Unnamed")]]
    raw["event_time"] = pd.to_datetime(raw["trans_date_trans_time"])
    return raw.sort_values("event_time").reset_index(drop=True)


def store(warehouse: Warehouse, rows: pd.DataFrame, *, latency_ms: float = 3.0) -> None:
    """Store the rows as scored by a champion, with a scoring latency."""
    records = rows.drop(columns=["event_time"]).to_dict(orient="records")
    warehouse.store_scored_batch(
        [
            ScoredTransaction(
                transaction={k: v for k, v in record.items() if v != ""},
                score=ScoreRecord(
                    model_name="fraud-detector",
                    model_version="1",
                    fraud_probability=0.02,
                    decision="approve",
                    scored_at=datetime(2026, 1, 1),
                    latency_ms=latency_ms,
                ),
            )
            for record in records
        ]
    )


def label(warehouse: Warehouse, rows: pd.DataFrame, *, after: timedelta) -> None:
    """Label the rows with their own is_fraud, `after` their event time."""
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=row.is_fraud == "1",
                label_time=row.event_time + after,
                source="feed",
            )
            for row in rows.itertuples()
        ]
    )


def between(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The rows with event_time in [start, end)."""
    return frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]


def statuses(report: Any) -> dict[str, str]:
    """Check name -> status."""
    return {c.name: c.status for c in report.checks}


def test_the_real_sample_passes_every_check(warehouse: Warehouse, sample: pd.DataFrame) -> None:
    """Stored, scored fast and labelled two days later: every check is ok, nothing fails."""
    store(warehouse, sample)
    label(warehouse, sample, after=timedelta(days=2))
    report = run_quality(warehouse, as_of=AS_OF, days=7, label_delay_days=7)
    assert dict.fromkeys(statuses(report), "ok") == statuses(report)
    assert not report.failed
    assert len(between(sample, AS_OF - WEEK, AS_OF)) == report.transactions
    matured = between(sample, AS_OF - 2 * WEEK, AS_OF - WEEK)
    assert f"0 of {len(matured)} matured" in report.check("unlabelled").detail
    assert 3.0 == report.check("latency_p99").value
    assert 1.0 == report.check("volume").value  # no day outside chance
    # Replayed history arrives years late: measured, but not judged.
    assert 1.0 == report.check("late_arrivals").value
    document = json.loads(json.dumps(report.to_dict()))
    assert "ok" == document["status"] and document["failed"] is False
    assert (AS_OF - WEEK).isoformat() == document["start"]
    assert 7.0 == document["days"]
    expected_checks = {
        "volume",
        *(f"missing_{f}" for f in MODEL_FIELDS),
        "amount_non_positive",
        "amount_extreme",
        "unlabelled",
        "unknown_labels",
        "unscored",
        "latency_p99",
        "duplicates",
        "late_arrivals",
    }
    assert expected_checks == {c["name"] for c in document["checks"]}


def bad_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Copies of rows under new ids, without a cardholder latitude and with a zero amount."""
    bad = rows.copy()
    bad["trans_num"] = [f"bad-{i}" for i in range(len(bad))]
    bad["lat"] = ""
    bad["amt"] = "0"
    return bad


def duplicate_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The same card, merchant, amount and time as the rows, sent again under new ids."""
    copies = rows.copy()
    copies["trans_num"] = [f"again-{i}" for i in range(len(copies))]
    return copies


def test_a_bad_week_fails_and_the_week_before_passes(
    warehouse: Warehouse, sample: pd.DataFrame
) -> None:
    """A lost day, incomplete and zero-amount records, slow scores, unscored transactions,
    missing and orphaned labels each fail their check; the clean week before passes."""
    last_day = AS_OF - timedelta(days=1)
    kept = sample[(sample["event_time"] < last_day) | (sample["event_time"] >= AS_OF)]
    store(warehouse, kept)
    window = between(kept, AS_OF - WEEK, AS_OF)
    bad = bad_rows(window.head(BAD_ROWS))
    store(warehouse, bad, latency_ms=500.0)
    store(warehouse, duplicate_rows(window.tail(DUPLICATES)))
    unscored = list(window["trans_num"].iloc[BAD_ROWS : BAD_ROWS + UNSCORED])
    with warehouse.engine.begin() as connection:
        connection.execute(sa.delete(ScoreRow).where(ScoreRow.trans_num.in_(unscored)))
    # Labels stop two weeks before as_of; labels of transactions never stored arrive instead.
    label(warehouse, kept[kept["event_time"] < AS_OF - 2 * WEEK], after=timedelta(days=2))
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=f"ghost-{i}", is_fraud=False, label_time=AS_OF - timedelta(days=2)
            )
            for i in range(20)
        ]
    )

    report = run_quality(warehouse, as_of=AS_OF, days=7, label_delay_days=7)

    total = len(window) + BAD_ROWS + DUPLICATES
    assert total == report.transactions
    assert report.failed
    expected = {
        "volume": "fail",
        "missing_lat": "fail",
        "amount_non_positive": "fail",
        "unlabelled": "fail",
        "unknown_labels": "fail",
        "unscored": "fail",
        "latency_p99": "fail",
        "duplicates": "warn",
    }
    assert expected == {n: s for n, s in statuses(report).items() if s != "ok"}
    assert BAD_ROWS / total == pytest.approx(report.check("missing_lat").value)
    assert BAD_ROWS / total == pytest.approx(report.check("amount_non_positive").value)
    assert UNSCORED / total == pytest.approx(report.check("unscored").value)
    assert DUPLICATES / total == pytest.approx(report.check("duplicates").value)
    assert 1.0 == report.check("unlabelled").value
    assert 1.0 == report.check("unknown_labels").value  # the only labels given in the window
    assert 500.0 == report.check("latency_p99").value
    # The empty last day, against the median of the same day in the four weeks before.
    usual = pd.Series(
        [len(between(sample, last_day - w * WEEK, AS_OF - w * WEEK)) for w in range(1, 5)]
    ).median()
    volume = report.check("volume")
    assert usual == volume.value
    assert f"{last_day:%Y-%m-%d %H:%M} +24h, 0 transactions, below the usual {usual:g}" in (
        volume.detail
    )

    before = run_quality(warehouse, as_of=AS_OF - WEEK, days=7, label_delay_days=7)
    assert not before.failed
    assert dict.fromkeys(statuses(before), "ok") == statuses(before)

    console = Console(record=True, width=200)
    console.print(render_quality(report))
    text = console.export_text()
    assert f"{total} transactions: FAIL" in text
    assert "missing_lat" in text and "500.0 ms" in text


def live_rows(sample: pd.DataFrame, times: Sequence[datetime]) -> pd.DataFrame:
    """Sample rows re-dated to the given event times, as a live feed would send them now."""
    rows = sample.head(len(times)).copy()
    rows["trans_date_trans_time"] = [t.strftime("%Y-%m-%d %H:%M:%S") for t in times]
    rows["unix_time"] = ""
    rows["event_time"] = list(times)
    return rows


def test_late_arrivals_are_judged_live_and_not_in_a_replay(
    warehouse: Warehouse, sample: pd.DataFrame
) -> None:
    """Live traffic arriving within minutes is ok; three hours late for 5 % of it warns."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    on_time = [now - timedelta(minutes=1 + i % 30) for i in range(95)]
    store(warehouse, live_rows(sample, on_time))
    after = now + timedelta(minutes=5)
    assert "ok" == run_quality(warehouse, as_of=after, days=1).check("late_arrivals").status

    late = live_rows(sample.iloc[200:], [now - timedelta(hours=3)] * 5)
    late["trans_num"] = [f"late-{i}" for i in range(5)]
    store(warehouse, late)
    check = run_quality(warehouse, as_of=after, days=1).check("late_arrivals")
    assert ("warn", 0.05, 0.01) == (check.status, check.value, check.limit)
    assert "5 of 100 arrivals over 1 h after their event time" == check.detail


def test_as_of_defaults_to_the_latest_event_and_an_empty_warehouse_is_refused(
    warehouse: Warehouse, sample: pd.DataFrame
) -> None:
    """Without as_of the window ends the second after the latest stored event, which it
    counts; with nothing stored, an error."""
    with pytest.raises(ValueError, match="no transactions"):
        run_quality(warehouse)
    store(warehouse, sample.head(50))
    report = run_quality(warehouse, days=3)
    latest = sample["event_time"].iloc[49].to_pydatetime()
    assert latest.replace(microsecond=0) + timedelta(seconds=1) == report.as_of
    # [as_of - 3 days, as_of): the latest transaction is among those checked.
    window = between(sample.head(50), report.start, report.as_of)
    assert latest in set(window["event_time"])
    assert len(window) == report.transactions
