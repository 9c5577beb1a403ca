"""The alert outbox: events stored with what caused them, delivered later by the sender.

Enqueueing ignores an event whose dedup key is stored already, so an event raised twice (a
retried request, two replicas) is delivered once. Rows stay after delivery, as a record.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from fraudops.storage.sql import SqlTables
from fraudops.storage.tables import AlertOutboxRow
from fraudops.times import utc_naive, utc_now

if TYPE_CHECKING:
    from fraudops.alerts.events import AlertEvent, DeclineRule


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    """One outbox row: the event and where its delivery stands."""

    id: int
    kind: str
    dedup_key: str
    created_at: datetime
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class OutboxTables(SqlTables):
    """The `alert_outbox` table: enqueue, find what is due, record attempts."""

    # Which declines raise an alert; None: alerts are off and nothing is enqueued.
    alert_rule: "DeclineRule | None" = None

    def enqueue_alerts(self, events: Sequence["AlertEvent"]) -> int:
        """Store events for delivery, skipping those whose dedup key is stored; how many new."""
        with self.engine.begin() as connection:
            return self._enqueue_alerts(connection, events)

    def _enqueue_alerts(
        self,
        connection: Connection,
        events: Sequence["AlertEvent"],
        *,
        at: datetime | None = None,
    ) -> int:
        """enqueue_alerts within a database transaction; due from `at` (default: now)."""
        if not events:
            return 0
        now = utc_naive(at or utc_now())
        rows = [
            {
                "kind": event.kind,
                "dedup_key": event.dedup_key,
                "created_at": now,
                "payload": event.as_dict(),
                "attempts": 0,
                "next_attempt_at": now,
                "delivered_at": None,
                "last_error": None,
            }
            for event in {event.dedup_key: event for event in events}.values()
        ]
        return self._insert_ignoring(connection, AlertOutboxRow, rows, key=("dedup_key",))

    def due_alerts(
        self, now: datetime, *, limit: int = 1000, dedup_keys: Sequence[str] | None = None
    ) -> list[OutboxEntry]:
        """Undelivered events whose next attempt is due at `now`, oldest first; only those
        with the dedup keys given, if any are."""
        statement = (
            select(AlertOutboxRow)
            .where(
                AlertOutboxRow.delivered_at.is_(None),
                AlertOutboxRow.next_attempt_at <= utc_naive(now),
            )
            .order_by(AlertOutboxRow.id)
            .limit(limit)
        )
        if dedup_keys is not None:
            statement = statement.where(AlertOutboxRow.dedup_key.in_(list(dedup_keys)))
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(statement)]

    def alert(self, dedup_key: str) -> OutboxEntry | None:
        """The outbox row of a dedup key, or None."""
        statement = select(AlertOutboxRow).where(AlertOutboxRow.dedup_key == dedup_key)
        with self.engine.connect() as connection:
            row = connection.execute(statement).one_or_none()
        return None if row is None else _entry(row)

    def outbox(self, *, limit: int = 1000) -> list[OutboxEntry]:
        """Every outbox row, oldest first (for inspection and tests)."""
        statement = select(AlertOutboxRow).order_by(AlertOutboxRow.id).limit(limit)
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(statement)]

    def delivered_alerts_since(self, kind: str, since: datetime) -> int:
        """How many events of a kind were delivered at or after `since`."""
        statement = select(func.count()).where(
            AlertOutboxRow.kind == kind, AlertOutboxRow.delivered_at >= utc_naive(since)
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(statement) or 0)

    def mark_alerts_delivered(self, ids: Sequence[int], *, at: datetime) -> None:
        """Record the delivery of events (one attempt more each)."""
        self._set_alerts(
            ids, delivered_at=utc_naive(at), attempts=AlertOutboxRow.attempts + 1, last_error=None
        )

    def mark_alerts_failed(self, ids: Sequence[int], *, error: str, retry_at: datetime) -> None:
        """Record a failed attempt of events and when to try them again."""
        self._set_alerts(
            ids,
            attempts=AlertOutboxRow.attempts + 1,
            next_attempt_at=utc_naive(retry_at),
            last_error=error[:2000],
        )

    def postpone_alerts(self, ids: Sequence[int], *, until: datetime) -> None:
        """Move the next attempt of events to `until`, without counting an attempt."""
        self._set_alerts(ids, next_attempt_at=utc_naive(until))

    def fold_alerts(self, ids: Sequence[int], *, digest: "AlertEvent", at: datetime) -> bool:
        """Replace events by a digest event in one database transaction; False (and nothing
        changed) when a digest with that dedup key exists already."""
        with self.engine.begin() as connection:
            if not self._enqueue_alerts(connection, [digest], at=at):
                return False
            _update_alerts(
                connection,
                ids,
                delivered_at=utc_naive(at),
                last_error=f"folded into {digest.dedup_key}",
            )
        return True

    def _set_alerts(self, ids: Sequence[int], **values: Any) -> None:
        """Set columns of the events `ids` in a database transaction of their own."""
        if not ids:
            return
        with self.engine.begin() as connection:
            _update_alerts(connection, ids, **values)


def _update_alerts(connection: Connection, ids: Sequence[int], **values: Any) -> None:
    """Set columns of the events `ids`."""
    connection.execute(
        update(AlertOutboxRow).where(AlertOutboxRow.id.in_(list(ids))).values(**values)
    )


def _entry(row: Any) -> OutboxEntry:
    """An outbox row as a record."""
    return OutboxEntry(
        id=row.id,
        kind=row.kind,
        dedup_key=row.dedup_key,
        created_at=row.created_at,
        payload=dict(row.payload),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )
