"""Reads over the stored history: labelled windows, served scores, replays, the event clock.

Monitoring, retraining, champion/challenger evaluation and state rebuilds read through these.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Row, ScalarSelect, String, Text, cast, func, select, type_coerce
from sqlalchemy.orm import aliased

from fraudops.storage.base import HistoricTransaction, LabelRecord
from fraudops.storage.sql import SqlTables
from fraudops.storage.tables import CHAMPION_ROLE, LabelRow, ScoreRow, TransactionRow
from fraudops.times import utc_naive

if TYPE_CHECKING:
    from fraudops.data.profiles import DatasetProfile

# The event clock: of the latest CLOCK_SAMPLE event times, skip one in CLOCK_OUTLIER_SHARE
# from the top, and never go further than CLOCK_CEILING ahead of the wall clock.
CLOCK_SAMPLE = 1_000
CLOCK_OUTLIER_SHARE = 100
CLOCK_CEILING = timedelta(days=1)
LABELLED_COLUMNS = (
    "trans_num",
    "event_time",
    "is_fraud",
    "label_time",
    "label_source",
    "model_name",
    "model_version",
    "fraud_probability",
    "decision",
)


class HistoryReads(SqlTables):
    """Windows of the stored transactions with their labels and champion scores."""

    def labelled_between(
        self, start: datetime, end: datetime, *, labels_known_by: datetime | None = None
    ) -> pd.DataFrame:
        """Labelled transactions with event_time in [start, end), with the champion score.

        One row per transaction: the raw record's fields, `event_time`, the label (`is_fraud`
        as 0/1, `label_time`, `label_source`) and the first champion score stored. With
        `labels_known_by`, only labels known by then count (point-in-time monitoring).
        """
        statement = (
            select(
                TransactionRow.trans_num,
                TransactionRow.record,
                TransactionRow.event_time,
                LabelRow.is_fraud,
                LabelRow.label_time,
                LabelRow.source.label("label_source"),
                ScoreRow.model_name,
                ScoreRow.model_version,
                ScoreRow.fraud_probability,
                ScoreRow.decision,
            )
            .join(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            # Each transaction's first champion score, looked up per transaction of the window
            # (grouping every stored score first made SQLite scan them all).
            .outerjoin(ScoreRow, ScoreRow.id == _first_champion_score())
            .where(TransactionRow.event_time >= utc_naive(start))
            .where(TransactionRow.event_time < utc_naive(end))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        if labels_known_by is not None:
            statement = statement.where(LabelRow.label_time <= utc_naive(labels_known_by))
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        records = [
            {
                **row.record,
                "trans_num": row.trans_num,
                "event_time": row.event_time,
                "is_fraud": int(row.is_fraud),
                "label_time": row.label_time,
                "label_source": row.label_source,
                "model_name": row.model_name,
                "model_version": row.model_version,
                "fraud_probability": row.fraud_probability,
                "decision": row.decision,
            }
            for row in rows
        ]
        frame = pd.DataFrame.from_records(records)
        record_columns = [c for c in frame.columns if c not in LABELLED_COLUMNS]
        return frame.reindex(columns=[*record_columns, *LABELLED_COLUMNS])

    def transactions_since(self, time: datetime) -> Iterator[HistoricTransaction]:
        """Stored transactions with event_time at or after `time`, in event-time order."""
        statement = (
            select(
                TransactionRow.record,
                TransactionRow.event_time,
                TransactionRow.trans_num,
                LabelRow.is_fraud,
                LabelRow.label_time,
                LabelRow.source,
            )
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.event_time >= utc_naive(time))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=1_000).execute(statement)
            for row in result:
                label = None
                if row.is_fraud is not None:
                    label = LabelRecord(
                        trans_num=row.trans_num,
                        is_fraud=row.is_fraud,
                        label_time=row.label_time,
                        source=row.source,
                    )
                yield HistoricTransaction(
                    record=dict(row.record), event_time=row.event_time, label=label
                )

    def history_frame(
        self,
        start: datetime,
        end: datetime,
        *,
        labels_known_by: datetime,
        profile: "DatasetProfile | None" = None,
    ) -> pd.DataFrame:
        """Stored transactions with event_time in [start, end) as the readers load a file.

        The frame has the columns of `profile` (default Sparkov: the canonical columns)
        parsed as `load_transactions` parses them, `trans_num`, `event_time`, and the labels
        as known at `labels_known_by`: `is_fraud` (0/1, 0 where no label was known yet; also
        under the profile's label column), `labelled` (whether one was) and `label_time`.
        This is what retraining and champion/challenger evaluation read.
        """
        from fraudops.data.profiles import SPARKOV  # noqa: PLC0415 - data imports storage

        profile = profile if profile is not None else SPARKOV
        known = (
            select(LabelRow.trans_num, LabelRow.is_fraud, LabelRow.label_time)
            .where(LabelRow.label_time <= utc_naive(labels_known_by))
            .subquery()
        )
        statement = (
            select(
                TransactionRow.trans_num,
                # As the database holds them: JSON text and, on SQLite, date-time text; parsed
                # below in bulk, which costs a fraction of parsing them row by row.
                cast(TransactionRow.record, Text).label("record"),
                type_coerce(TransactionRow.event_time, String).label("event_time"),
                known.c.is_fraud,
                type_coerce(known.c.label_time, String).label("label_time"),
            )
            .outerjoin(known, known.c.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.event_time >= utc_naive(start))
            .where(TransactionRow.event_time < utc_naive(end))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=10_000).execute(statement).all()
        if not rows:
            return pd.DataFrame(columns=["trans_num", "event_time", "is_fraud", "labelled"])
        frame = _loaded_frame(rows, profile)
        trans_nums = pd.Index([row.trans_num for row in rows])
        positions = trans_nums.get_indexer(frame["trans_num"])
        if (positions < 0).any():  # every loaded row is a stored one
            raise KeyError(frame["trans_num"][positions < 0].iloc[0])
        known_label = pd.Series(
            np.array([row.is_fraud for row in rows], dtype=object)[positions], index=frame.index
        )
        frame["labelled"] = known_label.notna().to_numpy()
        frame["is_fraud"] = known_label.fillna(value=False).astype("int8").to_numpy()
        if profile.label is not None:
            frame[profile.label] = frame["is_fraud"]
        label_times = _datetimes([row.label_time for row in rows])[positions]
        frame["label_time"] = pd.Series(label_times, index=frame.index)
        return frame.reset_index(drop=True)

    def served_between(
        self, start: datetime, end: datetime, *, limit: int | None = None
    ) -> pd.DataFrame:
        """The champion's first score of each transaction with event_time in [start, end).

        Columns: trans_num, event_time, model_name, model_version, fraud_probability,
        decision, then one column per feature the champion computed (NaN where missing).
        With `limit`, only the latest `limit` transactions of the window (a drift sample).
        """
        # Per transaction of the window (its event-time index first), not per stored score:
        # SQLite would otherwise scan every score ever stored.
        champion = (
            select(_first_champion_score().label("score_id"))
            .where(TransactionRow.event_time >= utc_naive(start))
            .where(TransactionRow.event_time < utc_naive(end))
            .subquery()
        )
        statement = (
            select(
                ScoreRow.trans_num,
                TransactionRow.event_time,
                ScoreRow.model_name,
                ScoreRow.model_version,
                ScoreRow.fraud_probability,
                ScoreRow.decision,
                ScoreRow.features,
            )
            .join(champion, champion.c.score_id == ScoreRow.id)
            .join(TransactionRow, TransactionRow.trans_num == ScoreRow.trans_num)
            .order_by(TransactionRow.event_time.desc(), ScoreRow.trans_num)
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=10_000).execute(statement).all()
        base = pd.DataFrame(
            {
                "trans_num": [r.trans_num for r in rows],
                "event_time": pd.to_datetime([r.event_time for r in rows]),
                "model_name": [r.model_name for r in rows],
                "model_version": [r.model_version for r in rows],
                "fraud_probability": [float(r.fraud_probability) for r in rows],
                "decision": [r.decision for r in rows],
            }
        )
        features = pd.DataFrame.from_records([r.features or {} for r in rows]).astype("float64")
        frame = pd.concat([base, features], axis=1)
        return frame.iloc[::-1].reset_index(drop=True)

    def fraud_label_waits(
        self, start: datetime, end: datetime, *, labels_known_by: datetime
    ) -> list[float]:
        """Seconds from transaction to fraud label, of the frauds with event_time in
        [start, end) whose label was known by `labels_known_by`."""
        known_frauds = (
            select(LabelRow.trans_num)
            .where(LabelRow.is_fraud.is_(True))
            .where(LabelRow.label_time <= utc_naive(labels_known_by))
        )
        # The few frauds first: SQLite would otherwise walk every transaction of the window.
        # (A trans_num has one label, so the joined label is the one known_frauds selected.)
        statement = (
            select(TransactionRow.event_time, LabelRow.label_time)
            .join(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.trans_num.in_(known_frauds))
            .where(TransactionRow.event_time >= utc_naive(start))
            .where(TransactionRow.event_time < utc_naive(end))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [(row.label_time - row.event_time).total_seconds() for row in rows]

    def count_between(self, start: datetime, end: datetime) -> int:
        """How many transactions are stored with event_time in [start, end)."""
        statement = (
            select(func.count())
            .select_from(TransactionRow)
            .where(TransactionRow.event_time >= utc_naive(start))
            .where(TransactionRow.event_time < utc_naive(end))
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(statement) or 0)

    def count_transactions(self) -> int:
        """How many transactions are stored."""
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(TransactionRow)) or 0)

    def event_clock(self, *, now: datetime | None = None) -> datetime | None:
        """ "Now" in the data's event time, robust to outliers; None if nothing is stored.

        Of the CLOCK_SAMPLE latest event times, the value above which one in a hundred lie
        (the latest itself with fewer than a hundred), and never later than the wall clock
        `now` (default: the current time) plus a day: transactions dated far ahead, already
        stored, do not move it.
        """
        statement = (
            select(TransactionRow.event_time)
            .order_by(TransactionRow.event_time.desc())
            .limit(CLOCK_SAMPLE)
        )
        with self.engine.connect() as connection:
            latest = list(connection.scalars(statement))
        if not latest:
            return None
        ceiling = utc_naive(now or datetime.now(UTC)) + CLOCK_CEILING
        below = [time for time in latest if time <= ceiling]
        if not below:
            return ceiling
        return below[len(below) // CLOCK_OUTLIER_SHARE]


def _first_champion_score() -> "ScalarSelect[int]":
    """The id of the first champion score of the enclosing query's transaction (a subquery)."""
    score = aliased(ScoreRow)  # apart from any score the enclosing query reads
    return (
        select(func.min(score.id))
        .where(score.trans_num == TransactionRow.trans_num)
        .where(score.role == CHAMPION_ROLE)
        .correlate(TransactionRow)
        .scalar_subquery()
    )


def _loaded_frame(rows: "Sequence[Row[Any]]", profile: "DatasetProfile") -> pd.DataFrame:
    """Stored records in `profile`'s columns, checked and parsed as the readers parse a file,
    with `trans_num`."""
    from fraudops.data.profile_schema import profile_record  # noqa: PLC0415 - data imports storage
    from fraudops.data.profiles import SPARKOV  # noqa: PLC0415
    from fraudops.data.schema import stored_transaction  # noqa: PLC0415
    from fraudops.data.validation import check_frame  # noqa: PLC0415

    time = profile.timestamps[0]
    if profile == SPARKOV:
        timestamps = set(SPARKOV.timestamp_columns)
        raw = pd.DataFrame.from_records([orjson.loads(row.record) for row in rows])
        raw = raw.drop(columns=[c for c in raw.columns if c in timestamps or c == "event_time"])
        raw["trans_num"] = [row.trans_num for row in rows]
        raw["trans_date_trans_time"] = [_second_text(row.event_time) for row in rows]
        return check_frame(raw, SPARKOV, require_label=False).clean_frame()
    records = []
    for row in rows:
        record = profile_record(stored_transaction(orjson.loads(row.record)), profile)
        record.pop(profile.label or "", None)  # the labels known by then are set apart
        if isinstance(record[time.column], datetime):
            record[time.column] = record[time.column].strftime(time.format or "%Y-%m-%d %H:%M:%S")
        records.append(record)
    # Rows keep their stored id, under the profile's id column even where files have none.
    keyed = profile.model_copy(update={"transaction_id": profile.id_column})
    frame = check_frame(pd.DataFrame.from_records(records), keyed, require_label=False)
    clean = frame.clean_frame()
    clean["trans_num"] = clean[profile.id_column].astype(str)
    return clean


def _second_text(moment: datetime | str) -> str:
    """A stored naive date-time as "YYYY-MM-DD HH:MM:SS" (SQLite returns its text, which
    starts so; PostgreSQL's driver a datetime)."""
    if isinstance(moment, str):
        return moment[:19]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _datetimes(moments: list[datetime | str | None]) -> "np.ndarray[Any, Any]":
    """Stored naive date-times (SQLite's text or the driver's datetimes, None for none) as
    datetime64[us], NaT for none."""
    return pd.to_datetime(pd.Series(moments, dtype=object)).to_numpy(dtype="datetime64[us]")
