"""Where transactions come from: a file replayed in time, the live HTTP feed, a Redis stream.

Every source hands out `Item`s and is told, through `ack`, which ones the warehouse holds.
A source that can deliver again (`redelivers`) remembers only acknowledged positions: the
file replay its checkpoint, the Redis stream its consumer group's pending entries. The
live feed forgets a row once served, so the ingester keeps its rows in a durable spool.
"""

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import redis
import structlog

from fraudops.data.profiles import SPARKOV, DatasetProfile
from fraudops.data.readers import DataFileError, load_transactions
from fraudops.data.schema import CanonicalTransaction
from fraudops.feed.records import (
    UNKNOWN_TIME,
    arrived_labels,
    event_times_ms,
)
from fraudops.ingest.backoff import Backoff, retry_after
from fraudops.ingest.spool import Item

log = structlog.get_logger(__name__)

TRANSACTION = "transaction"
LABEL = "label"
CANONICAL_FIELDS = tuple(CanonicalTransaction.model_fields)
# Fields a stream entry may carry: a transaction's JSON, or a label's.
STREAM_TRANSACTION_FIELD = "transaction"
STREAM_LABEL_FIELD = "label"


class SourceError(RuntimeError):
    """The source cannot be read for now (unreachable, refused); the ingester retries."""


class Source(Protocol):
    """A supply of transactions and labels that learns which ones are stored."""

    name: str
    redelivers: bool

    def read(self, limit: int) -> list[Item]:
        """Up to `limit` items due now, waiting at most about a second; [] if none yet."""
        ...

    def ack(self, items: Sequence[Item]) -> None:
        """These items (and all before them) are stored; a redelivering source moves on."""
        ...

    @property
    def finished(self) -> bool:
        """Nothing more will come (the file is replayed, the feed is exhausted)."""
        ...

    def lag(self) -> dict[str, float]:
        """How far behind the ingester is, in the source's terms (seconds, entries)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


# --- file replay ------------------------------------------------------------------------------


@dataclass
class _Checkpoint:
    """The replay's durable position: the next transaction row and the next label row."""

    path: Path
    transactions: int = 0
    labels: int = 0

    @classmethod
    def load(cls, path: Path) -> "_Checkpoint":
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, transactions=int(data["transactions"]), labels=int(data["labels"]))

    def save(self) -> None:
        """Write atomically: a crash leaves the old checkpoint or the new one, never half."""
        _save_json(self.path, {"transactions": self.transactions, "labels": self.labels})


class FileReplaySource:
    """A CSV or Parquet file of a profile replayed in event-time order, at `speed` x real time.

    Sparkov rows go out in canonical fields, another profile's in its own columns.

    speed 0 replays as fast as the scorer takes it. With a label delay, transactions go out
    without is_fraud and each label follows once the replay's clock passes its event time
    plus the delay; with `label_times`, each label follows at the file's own label_time with
    its reported_fraud value, and a row without one gets none; with neither, is_fraud travels
    with its transaction (stored as a label, never used as model input). The checkpoint holds
    the next row of each (of labels, in label-time order), so a restarted replay goes on where
    the stored data ends.
    """

    redelivers = True

    def __init__(
        self,
        path: Path,
        *,
        checkpoint: Path,
        profile: DatasetProfile = SPARKOV,
        speed: float = 0.0,
        label_delay_ms: int | None = None,
        label_times: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if label_times and label_delay_ms is not None:
            msg = "give a fixed label delay or the file's label times, not both"
            raise ValueError(msg)
        if speed < 0 or not math.isfinite(speed):
            msg = f"speed must be 0 (as fast as possible) or a positive factor, got {speed}"
            raise ValueError(msg)
        try:
            frame = load_transactions(path, profile).frame
        except DataFileError as error:
            raise SourceError(str(error)) from error
        times = event_times_ms(frame)
        order = np.argsort(times, kind="stable")
        self.name = f"file:{path.name}"
        self._frame = frame.iloc[order].reset_index(drop=True)
        self._times = times[order]
        # Sparkov rows go out in canonical fields (any of its time columns), other profiles'
        # in their own columns, as their request schema reads them.
        fields = (
            CANONICAL_FIELDS if profile == SPARKOV else {*profile.known_columns, profile.id_column}
        )
        self._fields = [c for c in self._frame.columns if c in fields]
        self._label = profile.label
        self._has_labels = profile.label is not None and profile.label in self._frame.columns
        self._trans_nums = self._frame[profile.id_column].astype(str).to_numpy()
        self._labels = (
            self._frame[profile.label].to_numpy(dtype=bool)
            if self._has_labels and profile.label is not None
            else np.zeros(0, bool)
        )
        self._label_delay_ms = label_delay_ms if self._has_labels else None
        self._arrivals = self._label_arrivals() if label_times else None
        self._checkpoint = _Checkpoint.load(checkpoint)
        self._next = self._checkpoint.transactions
        self._next_label = self._checkpoint.labels
        self._speed = speed
        self._clock = clock
        self._sleep = sleep
        # The replay clock: data time `_time_origin` plays at wall time `_wall_origin`.
        self._time_origin = int(self._times[self._next]) if self._next < len(self._times) else 0
        self._wall_origin = clock()

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def frame(self) -> pd.DataFrame:
        """A copy of the file's rows as loaded, in replay order (a transaction item's
        position is its row here)."""
        return self._frame.copy()

    # --- reading -----------------------------------------------------------------------------

    def _now_ms(self) -> float:
        """The data time the replay has reached (infinite when replaying as fast as possible)."""
        if self._speed == 0:
            return math.inf
        return self._time_origin + (self._clock() - self._wall_origin) * 1000 * self._speed

    def read(self, limit: int) -> list[Item]:
        """Transactions (and labels) whose time has come, in order; waits up to a second."""
        now = self._now_ms()
        if self._speed and self._next < len(self._times) and self._times[self._next] > now:
            due_in = (self._times[self._next] - now) / 1000 / self._speed
            self._sleep(min(1.0, due_in))
            now = self._now_ms()
        items = self._labels_due(now, limit)
        stop = self._next
        while stop < len(self._times) and len(items) + stop - self._next < limit:
            if self._times[stop] > now:
                break
            stop += 1
        items += self._transactions(self._next, stop)
        self._next = stop
        return items

    def _transactions(self, start: int, stop: int) -> list[Item]:
        if start == stop:
            return []
        rows = self._frame.iloc[start:stop]
        held = self._label_delay_ms is not None or self._arrivals is not None
        columns = [c for c in self._fields if c != self._label or not held]
        records = rows[columns].to_dict("records")
        return [
            Item(
                TRANSACTION,
                _json_ready({str(k): v for k, v in record.items()}),
                str(start + offset),
            )
            for offset, record in enumerate(records)
        ]

    def _label_arrivals(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Any]:
        """Rows that get a label, in label-time order: (rows, label times ms, values)."""
        if "label_time" not in self._frame.columns:
            msg = f"{self.name}: --label-times needs a label_time column in the file"
            raise SourceError(msg)
        truth = np.full(len(self._frame), np.nan)
        if self._has_labels:
            truth = pd.to_numeric(self._frame["is_fraud"], errors="coerce").to_numpy(np.float64)
        label_ms, reported = arrived_labels(self._frame, self._times, truth)
        known = np.flatnonzero(label_ms != UNKNOWN_TIME)
        rows = known[np.argsort(label_ms[known], kind="stable")].astype(np.int64)
        return rows, label_ms[rows], reported[rows]

    def _arrived_due(self, now: float, limit: int) -> list[Item]:
        """Labels at the file's own label times that have come, of rows already replayed."""
        assert self._arrivals is not None  # noqa: S101 - only called in label-time mode
        rows, label_ms, reported = self._arrivals
        stop = self._next_label
        # In label-time order; a label waits for its row to be replayed (it is never earlier).
        while stop < len(rows) and stop - self._next_label < limit:
            if label_ms[stop] > now or rows[stop] >= self._next:
                break
            stop += 1
        items = [
            Item(
                LABEL,
                {
                    "trans_num": str(self._trans_nums[rows[k]]),
                    "is_fraud": bool(reported[k]),
                    "label_time": _iso(int(label_ms[k])),
                    "source": "replay",
                },
                f"label:{k}",
            )
            for k in range(self._next_label, stop)
        ]
        self._next_label = stop
        return items

    def _labels_due(self, now: float, limit: int) -> list[Item]:
        """Labels of replayed rows whose delay has passed on the replay's clock."""
        if self._arrivals is not None:
            return self._arrived_due(now, limit)
        if self._label_delay_ms is None:
            return []
        delay = self._label_delay_ms
        stop = self._next_label
        # A label never goes out before its transaction, and only once its time has come.
        while stop < self._next and stop - self._next_label < limit:
            if self._times[stop] + delay > now:
                break
            stop += 1
        items = []
        for row in range(self._next_label, stop):
            label_time = int(self._times[row]) + delay
            items.append(
                Item(
                    LABEL,
                    {
                        "trans_num": str(self._trans_nums[row]),
                        "is_fraud": bool(self._labels[row]),
                        "label_time": _iso(label_time),
                        "source": "replay",
                    },
                    f"label:{row}",
                )
            )
        self._next_label = stop
        return items

    # --- acknowledging -----------------------------------------------------------------------

    def ack(self, items: Sequence[Item]) -> None:
        """Move the checkpoint past the stored rows and labels (acknowledged in order)."""
        moved = False
        for item in items:
            if item.kind == LABEL:
                row = int(item.position.removeprefix("label:")) + 1
                if row > self._checkpoint.labels:
                    self._checkpoint.labels, moved = row, True
            else:
                row = int(item.position) + 1
                if row > self._checkpoint.transactions:
                    self._checkpoint.transactions, moved = row, True
        if moved:
            self._checkpoint.save()

    @property
    def finished(self) -> bool:
        """Every row (and every label) handed out."""
        if self._arrivals is not None:
            labels_done = self._next_label >= len(self._arrivals[0])
        else:
            labels_done = self._label_delay_ms is None or self._next_label >= len(self._times)
        return self._next >= len(self._times) and labels_done

    @property
    def position(self) -> int:
        """Rows stored, per the checkpoint."""
        return self._checkpoint.transactions

    def lag(self) -> dict[str, float]:
        """Rows handed out but not stored yet, rows not replayed yet, and (paced replays)
        how many wall-clock seconds the stored data trails the replay's clock."""
        lag = {
            "unacknowledged": float(self._next - self._checkpoint.transactions),
            "remaining": float(len(self._times) - self._next),
        }
        stored = self._checkpoint.transactions
        if self._speed and 0 < stored <= len(self._times):
            behind_ms = max(0.0, self._now_ms() - float(self._times[stored - 1]))
            if stored < len(self._times):  # nothing left to trail once everything is stored
                lag["behind_seconds"] = behind_ms / 1000 / self._speed
        return lag

    def close(self) -> None:
        """Nothing to release: the checkpoint is saved on every acknowledgement."""


# --- the live HTTP feed -----------------------------------------------------------------------


class HttpFeedSource:
    """The live feed (`fraudops feed` or the public API it copies), polled for new rows.

    A served row is gone from the feed, so the ingester keeps it in its durable spool; a
    429 waits as Retry-After says (backing off further on repeats). With the feed's
    delayed labels on, /labels is polled too, its cursor saved once the labels are stored.
    """

    redelivers = False

    def __init__(
        self,
        url: str,
        *,
        state: Path,
        labels: bool = True,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.name = f"feed:{url}"
        self._client = client or httpx.Client(base_url=url, timeout=timeout)
        self._state = state
        self._labels = labels
        self._sleep = sleep
        self._backoff = Backoff()
        self._label_cursor: int | None = None
        if state.exists():
            saved = json.loads(state.read_text(encoding="utf-8"))
            self._label_cursor = saved.get("labels_until")
        self._exhausted = False
        self._last_event_ms: int | None = None
        self._labels_due_at = 0.0
        self.retries = 0

    def read(self, limit: int) -> list[Item]:
        """New rows (and, every few seconds, new labels); [] when none is due."""
        items: list[Item] = []
        if self._labels and time.monotonic() >= self._labels_due_at:
            labels = self._read_labels(limit)
            items += labels
            # A full page means more are waiting: ask again at once, not in a second, or
            # labels fall behind a fast stream.
            self._labels_due_at = 0.0 if len(labels) >= max(1, limit) else time.monotonic() + 1.0
        if self._exhausted:
            return items
        response = self._get("/current-transactions", {"n": max(1, limit - len(items))})
        if response is None:
            return items
        if response.status_code == httpx.codes.NO_CONTENT:
            return items
        if response.status_code == httpx.codes.GONE:
            self._exhausted = True
            log.info("the feed has served everything", source=self.name)
            return items
        document = json.loads(response.json())
        columns, rows = document["columns"], document["data"]
        for row in rows:
            record = {k: v for k, v in zip(columns, row, strict=True) if v is not None}
            time_ms = record.get("current_time")
            if isinstance(time_ms, int):
                self._last_event_ms = time_ms
            items.append(Item(TRANSACTION, record, str(record.get("trans_num", ""))))
        return items

    def _read_labels(self, limit: int) -> list[Item]:
        params: dict[str, int] = {"limit": max(1, limit)}
        if self._label_cursor is not None:
            params["since"] = self._label_cursor
        response = self._get("/labels", params)
        if response is None:
            return []
        if response.status_code == httpx.codes.NOT_FOUND:
            log.info("the feed serves no delayed labels: is_fraud comes with each row")
            self._labels = False
            return []
        page = response.json()
        self._label_cursor = int(page["until"])
        return [
            Item(
                LABEL,
                {
                    "trans_num": label["trans_num"],
                    "is_fraud": bool(label["is_fraud"]),
                    "label_time": _iso(int(label["label_time"])),
                    "source": "feed",
                },
                f"labels_until:{page['until']}",
            )
            for label in page["labels"]
        ]

    def _get(self, path: str, params: dict[str, int]) -> httpx.Response | None:
        """GET, backing off on 429, 5xx and connection errors; None after such a wait."""
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as error:
            self._wait(None, f"{type(error).__name__}: {error}")
            return None
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS or response.status_code >= 500:
            self._wait(retry_after(response), f"HTTP {response.status_code}")
            return None
        if response.status_code >= 400 and response.status_code not in (404, 410):
            msg = f"the feed refused {path}: HTTP {response.status_code} {response.text[:200]}"
            raise SourceError(msg)
        self._backoff.reset()
        return response

    def _wait(self, retry_after: float | None, reason: str) -> None:
        delay = self._backoff.next_delay(retry_after)
        self.retries += 1
        log.info("feed not available, backing off", reason=reason, seconds=round(delay, 3))
        self._sleep(delay)

    def ack(self, items: Sequence[Item]) -> None:
        """Save the labels cursor once the labels before it are stored."""
        cursors = [
            int(item.position.removeprefix("labels_until:"))
            for item in items
            if item.kind == LABEL and item.position.startswith("labels_until:")
        ]
        if cursors:
            _save_json(self._state, {"labels_until": max(cursors)})

    @property
    def finished(self) -> bool:
        """The feed answered 410 Gone: it has served every row (labels may still come)."""
        return self._exhausted and not self._labels

    def lag(self) -> dict[str, float]:
        """Seconds between now and the newest row's event time (the feed's own clock)."""
        if self._last_event_ms is None:
            return {}
        return {"event_age_seconds": time.time() - self._last_event_ms / 1000}

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


# --- Redis Streams ----------------------------------------------------------------------------


class RedisStreamSource:
    """A Redis stream read by a consumer group; an entry is acknowledged once stored.

    Entries carry a field `transaction` (the canonical record as JSON) or `label` (trans_num,
    is_fraud, label_time). On start the consumer first takes back its own pending entries
    (delivered before a crash, never acknowledged), then claims entries left pending by
    consumers idle for `claim_idle_ms`, then reads new ones.
    """

    redelivers = True

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        group: str = "fraudops-ingest",
        consumer: str = "ingest-1",
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.name = f"redis:{stream}/{group}"
        self._client = client
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._pending_done = False
        self._group_ready = False
        self._claimed_at = 0.0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "RedisStreamSource":
        """A source on the Redis server at `url`."""
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, **options)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    def read(self, limit: int) -> list[Item]:
        """Own pending entries first, then abandoned ones, then new ones (blocking briefly)."""
        try:
            self._ensure_group()
            if not self._pending_done:
                entries = self._read_group("0", limit, block=None)
                if entries:
                    return entries
                self._pending_done = True
            if time.monotonic() - self._claimed_at > self._claim_idle_ms / 1000:
                self._claimed_at = time.monotonic()
                claimed = self._claim(limit)
                if claimed:
                    return claimed
            return self._read_group(">", limit, block=self._block_ms)
        except redis.ResponseError as error:
            if "NOGROUP" in str(error):  # the stream was deleted (or Redis restarted empty)
                self._group_ready = False
                return []
            raise SourceError(f"Redis refused the read: {error}") from error
        except redis.RedisError as error:
            self._group_ready = False
            self._pending_done = False  # after a reconnect, take back what was delivered
            raise SourceError(f"Redis is unavailable: {error}") from error

    def _read_group(self, start: str, limit: int, *, block: int | None) -> list[Item]:
        answer: Any = self._client.xreadgroup(
            self._group, self._consumer, {self._stream: start}, count=limit, block=block
        )
        if not answer:
            return []
        _, entries = answer[0]
        return [item for entry_id, data in entries if (item := _stream_item(entry_id, data))]

    def _claim(self, limit: int) -> list[Item]:
        claimed: Any = self._client.xautoclaim(
            self._stream, self._group, self._consumer, self._claim_idle_ms, "0-0", count=limit
        )
        entries = claimed[1]
        return [item for entry_id, data in entries if (item := _stream_item(entry_id, data))]

    def ack(self, items: Sequence[Item]) -> None:
        """XACK the stored entries."""
        if not items:
            return
        try:
            self._client.xack(self._stream, self._group, *[item.position for item in items])
        except redis.RedisError as error:
            # Unacknowledged entries come back after a restart: stored twice is stored once.
            raise SourceError(f"Redis is unavailable for XACK: {error}") from error

    @property
    def finished(self) -> bool:
        """A stream never ends."""
        return False

    def lag(self) -> dict[str, float]:
        """Entries not yet delivered to the group, and delivered but not acknowledged."""
        try:
            for group in self._client.xinfo_groups(self._stream):
                name = group["name"]
                if (name.decode() if isinstance(name, bytes) else name) == self._group:
                    lag = group.get("lag")
                    return {
                        "entries_behind": float(lag) if lag is not None else math.nan,
                        "pending": float(group["pending"]),
                    }
        except redis.RedisError:
            return {}
        return {}

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def publish(client: redis.Redis, stream: str, items: Sequence[Item]) -> list[str]:
    """Append transactions and labels to a stream in the shape RedisStreamSource reads."""
    pipe = client.pipeline(transaction=False)
    for item in items:
        field_name = STREAM_LABEL_FIELD if item.kind == LABEL else STREAM_TRANSACTION_FIELD
        pipe.xadd(stream, {field_name: orjson.dumps(item.data)})
    return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]


def _stream_item(entry_id: bytes | str, data: dict[Any, Any]) -> Item | None:
    position = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    if not data:  # deleted while pending: XAUTOCLAIM reports it without fields
        return None
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}
    if STREAM_LABEL_FIELD in fields:
        return Item(LABEL, _loads(fields[STREAM_LABEL_FIELD]), position)
    if STREAM_TRANSACTION_FIELD in fields:
        return Item(TRANSACTION, _loads(fields[STREAM_TRANSACTION_FIELD]), position)
    # An entry of another shape: handed on as it is, so validation names what is wrong.
    return Item(TRANSACTION, {"_fields": sorted(fields)}, position)


def _loads(value: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return {"_invalid_json": str(error)}
    return data if isinstance(data, dict) else {"_not_an_object": str(type(data).__name__)}


# --- helpers ----------------------------------------------------------------------------------


def _json_ready(record: dict[str, Any]) -> dict[str, Any]:
    """A frame row as JSON-ready fields: no NaN, dates as text, numpy scalars as Python."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if value is pd.NaT:
            continue
        if isinstance(value, pd.Timestamp | datetime):
            out[key] = value.date().isoformat() if key == "dob" else value.isoformat(sep=" ")
        elif isinstance(value, date):
            out[key] = value.isoformat()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def _save_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically and durably: after a crash the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _iso(epoch_ms: int) -> str:
    """An epoch-millisecond time as ISO 8601 UTC."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat()
