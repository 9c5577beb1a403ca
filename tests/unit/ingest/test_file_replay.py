"""File replay: time order, checkpoints that resume, delayed labels, accelerated time."""

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from fraudops.data.schema import CanonicalTransaction
from fraudops.ingest.sources import LABEL, TRANSACTION, FileReplaySource
from fraudops.ingest.spool import Item

DAY_MS = 86_400_000


def read_all(source: FileReplaySource, *, limit: int = 1000) -> list[Item]:
    """Everything the source hands out, acknowledging as it goes."""
    out: list[Item] = []
    while not source.finished:
        batch = source.read(limit)
        source.ack(batch)
        out += batch
    return out


def test_rows_come_in_event_time_order_as_valid_transactions(
    sample_path: Path, tmp_path: Path
) -> None:
    """All 9,999 rows of the real sample, time-ordered, each a valid canonical transaction."""
    source = FileReplaySource(sample_path, checkpoint=tmp_path / "checkpoint.json")
    items = read_all(source)
    assert 9_999 == len(items)
    assert {TRANSACTION} == {item.kind for item in items}
    transactions = [CanonicalTransaction.model_validate(item.data) for item in items]
    times = [t.event_time for t in transactions]
    assert times == sorted(times)
    assert all(t.is_fraud is not None for t in transactions)  # no delay: labels travel inline
    expected = pd.read_csv(sample_path)["trans_num"]
    assert set(expected) == {t.trans_num for t in transactions}


def test_a_new_source_resumes_after_the_acknowledged_rows(
    sample_path: Path, tmp_path: Path
) -> None:
    """Rows handed out but not acknowledged come again; acknowledged ones never."""
    checkpoint = tmp_path / "checkpoint.json"
    first = FileReplaySource(sample_path, checkpoint=checkpoint)
    batch = first.read(100)
    first.ack(batch[:60])
    assert 60 == first.position
    second = FileReplaySource(sample_path, checkpoint=checkpoint)
    rest = read_all(second)
    assert [item.data["trans_num"] for item in batch[60:]] == [
        item.data["trans_num"] for item in rest[:40]
    ]
    assert 9_999 - 60 == len(rest)


def test_delayed_labels_follow_their_transactions(sample_path: Path, tmp_path: Path) -> None:
    """With a 1-day delay: no is_fraud in the records, each label after its transaction,
    stamped event time + 1 day, and every label sent by the end."""
    source = FileReplaySource(
        sample_path, checkpoint=tmp_path / "checkpoint.json", label_delay_ms=DAY_MS
    )
    items = read_all(source, limit=500)
    transactions = [i for i in items if i.kind == TRANSACTION]
    labels = [i for i in items if i.kind == LABEL]
    assert 9_999 == len(transactions) == len(labels)
    assert all("is_fraud" not in t.data for t in transactions)
    handed = {t.data["trans_num"]: n for n, t in enumerate(items) if t.kind == TRANSACTION}
    times = {
        t.data["trans_num"]: CanonicalTransaction.model_validate(t.data).event_time
        for t in transactions
    }
    frauds = dict(zip(*pd.read_csv(sample_path)[["trans_num", "is_fraud"]].T.values, strict=True))
    for n, label in enumerate(items):
        if label.kind != LABEL:
            continue
        trans_num = label.data["trans_num"]
        assert handed[trans_num] < n
        sent = datetime.fromisoformat(label.data["label_time"]).replace(tzinfo=None)
        assert times[trans_num] + timedelta(days=1) == sent
        assert bool(frauds[trans_num]) is label.data["is_fraud"]


def test_accelerated_replay_waits_for_each_row_to_be_due(sample_path: Path, tmp_path: Path) -> None:
    """At 3,600x a data hour lasts one clock second: rows come as the clock reaches them."""
    now = [0.0]
    source = FileReplaySource(
        sample_path,
        checkpoint=tmp_path / "checkpoint.json",
        speed=3600.0,
        clock=lambda: now[0],
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
    )
    frame = pd.read_csv(sample_path)
    stamps = pd.to_datetime(frame["trans_date_trans_time"]).sort_values().reset_index(drop=True)
    first_hour = int((stamps < stamps[0] + pd.Timedelta(hours=1)).sum())
    handed: list[Item] = []
    while now[0] < 1.0:
        handed += source.read(10_000)
    # one clock second = one data hour, give or take the rows of the last read
    hour_plus = int((stamps <= stamps[0] + pd.Timedelta(seconds=3600 * now[0])).sum())
    assert first_hour <= len(handed) <= hour_plus


def test_label_times_send_each_label_when_it_arrived_and_resume(
    sample_path: Path, tmp_path: Path
) -> None:
    """With --label-times: each label at the file's label_time with the reported value, after
    its transaction, none for rows without one; a restart resumes after the acknowledged ones."""
    frame = pd.read_csv(sample_path).head(400)
    event = pd.to_datetime(frame["trans_date_trans_time"])
    every_third = frame.index % 3 == 0
    frame["label_time"] = (event + pd.Timedelta(hours=5)).where(every_third)
    frame["reported_fraud"] = (1 - frame["is_fraud"]).where(every_third)  # all "friendly"
    path = tmp_path / "labelled.parquet"
    frame.to_parquet(path, index=False)
    checkpoint = tmp_path / "checkpoint.json"

    first = FileReplaySource(path, checkpoint=checkpoint, label_times=True)
    batch = first.read(300)
    first.ack(batch)
    second = FileReplaySource(path, checkpoint=checkpoint, label_times=True)
    items = batch + read_all(second, limit=50)

    labels = [i for i in items if i.kind == LABEL]
    assert int(every_third.sum()) == len(labels) == len({x.data["trans_num"] for x in labels})
    handed = {t.data["trans_num"]: n for n, t in enumerate(items) if t.kind == TRANSACTION}
    assert 400 == len(handed)
    expected = frame.set_index("trans_num")
    for n, label in enumerate(items):
        if label.kind != LABEL:
            continue
        row = expected.loc[label.data["trans_num"]]
        assert handed[label.data["trans_num"]] < n
        sent = datetime.fromisoformat(label.data["label_time"]).replace(tzinfo=None)
        assert row["label_time"] == sent
        assert bool(row["reported_fraud"]) is label.data["is_fraud"]
    assert all("is_fraud" not in t.data for t in items if t.kind == TRANSACTION)
