"""The audit trail of lifecycle decisions: warehouse rows, MLflow version tags, and reading them.

Every retraining, comparison, promotion and rollback is one `LifecycleEvent` in the
warehouse (inputs, metrics, verdict, trigger, actor) and tags on the model versions it
touched, so the registry UI tells the same story as the table.
"""

from collections.abc import Iterable

import structlog

from fraudops.registry.base import ModelNotFoundError, ModelRegistry
from fraudops.storage.base import LifecycleEvent
from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

# Version tags written by the lifecycle (all under one prefix, apart from MLflow's own).
TAG_TRIGGER = "fraudops.trigger"
TAG_ACTOR = "fraudops.actor"
TAG_AS_OF = "fraudops.as_of"
TAG_TRAINED_UNTIL = "fraudops.trained_until"
TAG_DATA_SOURCE = "fraudops.data_source"
TAG_PREVIOUS_CHAMPION = "fraudops.previous_champion"
TAG_PROMOTED_AT = "fraudops.promoted_at"
TAG_PROMOTED_BY = "fraudops.promoted_by"
TAG_PROMOTION_REASON = "fraudops.promotion_reason"
TAG_ROLLED_BACK_FROM = "fraudops.rolled_back_from"
TAG_ROLLED_BACK_AT = "fraudops.rolled_back_at"
TAG_LAST_COMPARE_VERDICT = "fraudops.last_compare_verdict"
TAG_LAST_COMPARE_AS_OF = "fraudops.last_compare_as_of"
TAG_LAST_COMPARE_METRIC = "fraudops.last_compare_metric"
TAG_LAST_COMPARE_DIFFERENCE = "fraudops.last_compare_difference"
TAG_LAST_COMPARE_INTERVAL = "fraudops.last_compare_interval"
TAG_LAST_COMPARE_ROLE = "fraudops.last_compare_role"

# The kinds of the loop's decisions about models; the trail also holds people's actions in
# the console (login, logout, label), which say nothing about a version.
DECISION_KINDS = ("monitor", "retrain", "compare", "promote", "rollback")
# How far back the audit trail is read to find a version's last decision or predecessor.
TRAIL_LIMIT = 1_000


def record_decision(warehouse: Warehouse, event: LifecycleEvent) -> LifecycleEvent:
    """Append a decision to the audit trail and log it; returns it with its id and time."""
    stored = warehouse.record_event(event)
    log.info(
        "lifecycle decision",
        kind=stored.kind,
        verdict=stored.verdict,
        trigger=stored.trigger,
        actor=stored.actor,
        champion_version=stored.champion_version,
        challenger_version=stored.challenger_version,
        event_id=stored.id,
    )
    return stored


def version_with_alias(registry: ModelRegistry, alias: str) -> int | None:
    """The version an alias points at, None when it points nowhere."""
    try:
        return registry.resolve(alias).version
    except ModelNotFoundError:
        return None


def registry_name(registry: ModelRegistry) -> str | None:
    """The registered model's name, for registries that expose one (both shipped ones do)."""
    name = getattr(registry, "name", None)
    return name if isinstance(name, str) else None


def subjects(event: LifecycleEvent) -> set[str]:
    """The model versions a decision was about (as text, as the audit table keeps them)."""
    detail = event.detail
    if event.kind == "retrain":
        found = {detail.get("version")}
    elif event.kind in ("promote", "rollback"):
        found = {event.champion_version, detail.get("previous_champion")}
    else:
        found = {event.champion_version, event.challenger_version}
    return {str(v) for v in found if v is not None}


def last_decisions(events: Iterable[LifecycleEvent]) -> dict[str, LifecycleEvent]:
    """The latest decision about each version, from events given newest first."""
    latest: dict[str, LifecycleEvent] = {}
    for event in events:
        for version in subjects(event):
            latest.setdefault(version, event)
    return latest


def previous_champion(
    *, warehouse: Warehouse, registry: ModelRegistry, champion: int
) -> int | None:
    """The version the champion replaced: from its latest promotion, else its version tag.

    A rollback does not rewrite this, so rolling back twice steps two promotions back.
    """
    name = registry_name(registry)
    for event in warehouse.events(limit=TRAIL_LIMIT, kind="promote"):
        if event.champion_version == str(champion) and event.model_name in (None, name):
            previous = event.detail.get("previous_champion")
            return None if previous is None else int(previous)
    for info in registry.versions():
        if info.version == champion and TAG_PREVIOUS_CHAMPION in info.tags:
            return int(info.tags[TAG_PREVIOUS_CHAMPION])
    return None


def describe(event: LifecycleEvent, version: int | str | None = None) -> str:
    """One line saying what a decision was: kind, verdict, trigger and when. For the
    champion a promotion or rollback replaced (`version`), that it was replaced and by which."""
    at = "" if event.at is None else f" at {event.at:%Y-%m-%d %H:%M}"
    verdict = event.verdict
    replaced = event.kind in ("promote", "rollback") and event.champion_version is not None
    if replaced and version is not None and str(version) != event.champion_version:
        verdict = f"replaced by v{event.champion_version}"
    return f"{event.kind}: {verdict} ({event.trigger}){at}"
