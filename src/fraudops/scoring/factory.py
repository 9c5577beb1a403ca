"""The scoring service the settings describe: what the HTTP app and the ingester both run."""

from fraudops.config import Settings
from fraudops.features.state import FeatureStateStore, InMemoryStateStore
from fraudops.scoring.drain import DrainProcess
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.service import ScoringService


def build_service(settings: Settings, *, metrics: ServiceMetrics) -> ScoringService:
    """The scoring service the settings describe: warehouse, registry and state store."""
    from fraudops.registry.tracking import MlflowRegistry  # noqa: PLC0415 - MLflow is heavy
    from fraudops.storage.warehouse import Warehouse  # noqa: PLC0415

    warehouse = Warehouse.from_settings(settings)
    opener = warehouse.opener() if settings.journal_drain == "process" else None
    return ScoringService(
        settings=settings,
        warehouse=warehouse,
        registry=MlflowRegistry(settings),
        store=state_store(settings),
        metrics=metrics,
        drain=None if opener is None else DrainProcess(opener, settings=settings),
    )


def state_store(settings: Settings) -> FeatureStateStore:
    """Redis when FRAUDOPS_REDIS_URL is set (shared by replicas), else this process's memory."""
    if settings.redis_url:
        from fraudops.features.redis_store import RedisStateStore  # noqa: PLC0415

        return RedisStateStore.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return InMemoryStateStore()
