"""The audit trail of lifecycle decisions and the monitoring runs, as the warehouse keeps them."""

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select

from fraudops.alerts.events import lifecycle_event, monitoring_event
from fraudops.storage.base import LifecycleEvent, MonitorRun
from fraudops.storage.outbox import OutboxTables
from fraudops.storage.tables import LifecycleEventRow, MonitorRunRow
from fraudops.times import utc_naive, utc_now


class AuditTables(OutboxTables):
    """The `lifecycle_events` and `monitor_runs` tables: appended to, read newest first.

    With alerts on, a promotion or rollback and a monitoring verdict that asks for
    retraining or reports drift go to the alert outbox in the same database transaction.
    """

    def record_event(self, event: LifecycleEvent) -> LifecycleEvent:
        """Append a decision to the audit trail; returns it with its id and time."""
        at = utc_naive(event.at or utc_now())
        values: dict[str, Any] = {
            "at": at,
            "as_of": None if event.as_of is None else utc_naive(event.as_of),
            "kind": event.kind,
            "trigger": event.trigger,
            "actor": event.actor,
            "model_name": event.model_name,
            "champion_version": event.champion_version,
            "challenger_version": event.challenger_version,
            "verdict": event.verdict,
            "detail": event.detail,
        }
        with self.engine.begin() as connection:
            event_id = connection.scalar(
                insert(LifecycleEventRow).values(values).returning(LifecycleEventRow.id)
            )
            stored = dataclasses.replace(event, id=event_id, at=at)
            if self.alert_rule is not None:
                alert = lifecycle_event(stored, console_url=self.alert_rule.console_url)
                self._enqueue_alerts(connection, [] if alert is None else [alert])
        return stored

    def events(
        self, *, limit: int = 100, kind: str | None = None, kinds: Sequence[str] | None = None
    ) -> list[LifecycleEvent]:
        """The latest audited decisions (of one kind, or of several), newest first."""
        statement = select(LifecycleEventRow).order_by(LifecycleEventRow.id.desc()).limit(limit)
        if kind is not None:
            statement = statement.where(LifecycleEventRow.kind == kind)
        if kinds is not None:
            statement = statement.where(LifecycleEventRow.kind.in_(kinds))
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            LifecycleEvent(
                id=row.id,
                at=row.at,
                as_of=row.as_of,
                kind=row.kind,
                trigger=row.trigger,
                actor=row.actor,
                model_name=row.model_name,
                champion_version=row.champion_version,
                challenger_version=row.challenger_version,
                verdict=row.verdict,
                detail=dict(row.detail),
            )
            for row in rows
        ]

    def store_monitor_run(self, run: MonitorRun) -> MonitorRun:
        """Keep a monitoring run; returns it with its id and time."""
        run_at = utc_naive(run.run_at or utc_now())
        values: dict[str, Any] = {
            "run_at": run_at,
            "as_of": utc_naive(run.as_of),
            "model_name": run.model_name,
            "model_version": run.model_version,
            "retrain": run.retrain,
            "reasons": list(run.reasons),
            "result": run.result,
        }
        with self.engine.begin() as connection:
            run_id = connection.scalar(
                insert(MonitorRunRow).values(values).returning(MonitorRunRow.id)
            )
            stored = dataclasses.replace(run, id=run_id, run_at=run_at)
            if self.alert_rule is not None:
                alert = monitoring_event(stored, console_url=self.alert_rule.console_url)
                self._enqueue_alerts(connection, [] if alert is None else [alert])
        return stored

    def event_counts(self) -> dict[tuple[str, str], int]:
        """How many audited decisions there are of each kind and verdict (for /metrics)."""
        statement = select(
            LifecycleEventRow.kind, LifecycleEventRow.verdict, func.count()
        ).group_by(LifecycleEventRow.kind, LifecycleEventRow.verdict)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return {(str(kind), str(verdict)): int(count) for kind, verdict, count in rows}

    def monitor_runs(self, *, limit: int = 20) -> list[MonitorRun]:
        """The latest monitoring runs, newest first."""
        statement = select(MonitorRunRow).order_by(MonitorRunRow.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            MonitorRun(
                id=row.id,
                run_at=row.run_at,
                as_of=row.as_of,
                model_name=row.model_name,
                model_version=row.model_version,
                retrain=row.retrain,
                reasons=list(row.reasons),
                result=dict(row.result),
            )
            for row in rows
        ]
