"""Persistence of scored transactions and labels: SQLAlchemy tables, Alembic migrations."""

from fraudops.storage.base import (
    Decision,
    HistoricTransaction,
    LabelOutcome,
    LabelRecord,
    LifecycleEvent,
    MonitorRun,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    StoredTransaction,
    TransactionStore,
)
from fraudops.storage.warehouse import Warehouse, alembic_config

__all__ = [
    "Decision",
    "HistoricTransaction",
    "LabelOutcome",
    "LabelRecord",
    "LifecycleEvent",
    "MonitorRun",
    "Reason",
    "ScoreRecord",
    "ScoredTransaction",
    "StoredResult",
    "StoredTransaction",
    "TransactionStore",
    "Warehouse",
    "alembic_config",
]
