"""Model operations for people and for the champion/challenger job: list, promote, roll back.

A change of champion moves the registry alias, records tags on the versions, writes an
audit event, and tells the running service to reload (which swaps without a restart).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from rich.table import Table

from fraudops.config import Settings
from fraudops.lifecycle.audit import (
    DECISION_KINDS,
    TAG_PREVIOUS_CHAMPION,
    TAG_PROMOTED_AT,
    TAG_PROMOTED_BY,
    TAG_PROMOTION_REASON,
    TAG_ROLLED_BACK_AT,
    TAG_ROLLED_BACK_FROM,
    TAG_TRAINED_UNTIL,
    TAG_TRIGGER,
    TRAIL_LIMIT,
    describe,
    last_decisions,
    previous_champion,
    record_decision,
    registry_name,
    version_with_alias,
)
from fraudops.lifecycle.notify import notify_service
from fraudops.registry.base import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    ModelVersionInfo,
)
from fraudops.storage.base import LifecycleEvent
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_now

log = structlog.get_logger(__name__)

ChangeKind = Literal["promote", "rollback"]
# The profile a version was trained on, by name and by content (a TOML profile may change).
TAG_DATA_PROFILE = "data_profile"
TAG_DATA_PROFILE_DIGEST = "data_profile_digest"


class ModelOpsError(LookupError):
    """A model operation that cannot be done: no such version, none to roll back to, no change."""


class SchemaChangeError(ModelOpsError):
    """A champion change that would change the transactions the service reads, not allowed."""


@dataclass(frozen=True, kw_only=True)
class ModelRow:
    """One registered version as `fraudops models list` shows it."""

    version: int
    aliases: tuple[str, ...]
    created_at: datetime
    model_type: str | None
    threshold: float | None
    validation_average_precision: float | None
    validation_f1: float | None
    trained_until: str | None
    trigger: str | None  # what made it: a lifecycle trigger, or None for `fraudops train`
    last_decision: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "version": self.version,
            "aliases": list(self.aliases),
            "created_at": self.created_at.isoformat(),
            "model_type": self.model_type,
            "threshold": self.threshold,
            "validation_average_precision": self.validation_average_precision,
            "validation_f1": self.validation_f1,
            "trained_until": self.trained_until,
            "trigger": self.trigger,
            "last_decision": self.last_decision,
        }


@dataclass(frozen=True, kw_only=True)
class ChampionChange:
    """A champion change: which version, which it replaced, the audit event, the reload."""

    action: ChangeKind
    champion: int
    previous: int | None
    event: LifecycleEvent
    notified: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "action": self.action,
            "champion": self.champion,
            "previous": self.previous,
            "event_id": self.event.id,
            "trigger": self.event.trigger,
            "actor": self.event.actor,
            "notified": self.notified,
        }

    def summary(self) -> str:
        """One line for people."""
        verb = "promoted to champion" if self.action == "promote" else "restored as champion"
        replaced = "" if self.previous is None else f" (was v{self.previous})"
        return f"v{self.champion} {verb}{replaced}; service: {self.notified}"


def list_models(registry: ModelRegistry, warehouse: Warehouse) -> list[ModelRow]:
    """Every registered version, newest first, with its metrics and latest audited decision."""
    name = registry_name(registry)
    events = [
        event
        for event in warehouse.events(limit=TRAIL_LIMIT, kinds=DECISION_KINDS)
        if name is None or event.model_name in (None, name)
    ]
    latest = last_decisions(events)
    return [_row(info, latest.get(str(info.version))) for info in registry.versions()]


def render_models(rows: list[ModelRow]) -> Table:
    """The `fraudops models list` table."""
    table = Table(title="Registered models (newest first)", title_justify="left")
    for column in ("version", "aliases", "AP", "F1", "threshold", "trained until", "made by"):
        table.add_column(column, justify="right" if column in ("AP", "F1") else "left")
    table.add_column("last decision")
    for row in rows:
        table.add_row(
            str(row.version),
            ", ".join(row.aliases),
            _number(row.validation_average_precision),
            _number(row.validation_f1),
            _number(row.threshold),
            (row.trained_until or "")[:16].replace("T", " "),
            row.trigger or "",
            row.last_decision or "",
        )
    return table


def promote(
    version: int,
    *,
    registry: ModelRegistry,
    warehouse: Warehouse,
    actor: str,
    reason: str,
    settings: Settings | None,
    change_schema: bool = False,
) -> ChampionChange:
    """Make a version the champion by hand (trigger "manual"), audited, the service notified.

    A version trained on another profile than the champion's is refused unless
    `change_schema` says the deployment changes the schema of the transactions it reads.
    """
    return change_champion(
        version,
        action="promote",
        registry=registry,
        warehouse=warehouse,
        trigger="manual",
        actor=actor,
        detail={"reason": reason},
        settings=settings,
        change_schema=change_schema,
    )


def rollback(
    *,
    registry: ModelRegistry,
    warehouse: Warehouse,
    actor: str,
    reason: str,
    settings: Settings | None,
    change_schema: bool = False,
) -> ChampionChange:
    """Give the champion alias back to the version the current champion replaced."""
    current = version_with_alias(registry, CHAMPION)
    if current is None:
        msg = "there is no champion: nothing to roll back"
        raise ModelOpsError(msg)
    previous = previous_champion(warehouse=warehouse, registry=registry, champion=current)
    if previous is None:
        msg = (
            f"champion v{current} replaced no earlier champion on record (no promotion in "
            "the audit trail, no fraudops.previous_champion tag): nothing to roll back to; "
            "choose a version with `fraudops models promote VERSION`"
        )
        raise ModelOpsError(msg)
    return change_champion(
        previous,
        action="rollback",
        registry=registry,
        warehouse=warehouse,
        trigger="manual",
        actor=actor,
        detail={"reason": reason},
        settings=settings,
        change_schema=change_schema,
    )


def change_champion(
    version: int,
    *,
    action: ChangeKind,
    registry: ModelRegistry,
    warehouse: Warehouse,
    trigger: str,
    actor: str,
    detail: dict[str, Any],
    settings: Settings | None,
    as_of: datetime | None = None,
    change_schema: bool = False,
) -> ChampionChange:
    """Move the champion alias to a version, tag and audit it, and notify the service.

    `as_of` is the event-time moment the decision looked from (a comparison's), if any.

    A version that was the challenger stops being one: it cannot shadow itself. A version
    trained on another profile than the champion is refused (SchemaChangeError) unless
    `change_schema`: the service would then read other transactions.
    """
    info = _version_info(registry, version)
    current = version_with_alias(registry, CHAMPION)
    if current == version:
        msg = f"v{version} is already the champion"
        raise ModelOpsError(msg)
    schema = schema_change(registry, version=version, champion=current)
    if schema is not None and not change_schema:
        raise SchemaChangeError(schema)
    if schema is not None:
        detail = detail | {"schema_change": schema}
    registry.set_alias(version, CHAMPION)
    if CHALLENGER in info.aliases:
        registry.delete_alias(CHALLENGER)
    now = utc_now().isoformat()
    if action == "promote":
        tags = {TAG_PROMOTED_AT: now, TAG_PROMOTED_BY: f"{trigger}:{actor}"}
        if current is not None:
            tags[TAG_PREVIOUS_CHAMPION] = str(current)
        if "reason" in detail:
            tags[TAG_PROMOTION_REASON] = str(detail["reason"])[:500]
        registry.set_version_tags(version, tags)
    else:
        registry.set_version_tags(version, {TAG_ROLLED_BACK_FROM: str(current)})
        if current is not None:
            registry.set_version_tags(current, {TAG_ROLLED_BACK_AT: now})
    event = record_decision(
        warehouse,
        LifecycleEvent(
            kind=action,
            trigger=trigger,
            actor=actor,
            verdict="promoted" if action == "promote" else "rolled_back",
            detail=detail | {"version": version, "previous_champion": current},
            model_name=registry_name(registry),
            champion_version=str(version),
            challenger_version=_text(version_with_alias(registry, CHALLENGER)),
            as_of=as_of,
        ),
    )
    notified = "not_configured" if settings is None else notify_service(settings)
    change = ChampionChange(
        action=action, champion=version, previous=current, event=event, notified=notified
    )
    log.info("champion changed", action=action, version=version, previous=current)
    return change


def _row(info: ModelVersionInfo, decision: LifecycleEvent | None) -> ModelRow:
    """The list row of one version."""
    tags, metrics = info.tags, info.metrics
    threshold = tags.get("threshold")
    return ModelRow(
        version=info.version,
        aliases=info.aliases,
        created_at=info.created_at,
        model_type=tags.get("model_type"),
        threshold=None if threshold is None else float(threshold),
        validation_average_precision=metrics.get("validation_average_precision"),
        validation_f1=metrics.get("validation_f1"),
        trained_until=tags.get(TAG_TRAINED_UNTIL) or tags.get("training.trained_until"),
        trigger=tags.get(TAG_TRIGGER),
        last_decision=None if decision is None else describe(decision, info.version),
    )


def _number(value: float | None) -> str:
    """A metric for the table; blank when unknown."""
    return "" if value is None else f"{value:.4f}"


def schema_change(registry: ModelRegistry, *, version: int, champion: int | None) -> str | None:
    """Why making `version` the champion changes the transactions the service reads (it was
    trained on another profile than the champion), or None if it does not."""
    if champion is None:
        return None
    new, old = _profile_of(registry, version), _profile_of(registry, champion)
    if new == old:
        return None
    return (
        f"v{version} was trained on profile {new[0]!r} and the champion v{champion} on "
        f"{old[0]!r}: promoting it changes the request schema of /v1/score and every client "
        "and ingester must send the new profile's fields; confirm with --change-schema "
        "(console: 'changes the schema') if the deployment changes schema"
    )


def _profile_of(registry: ModelRegistry, version: int) -> tuple[str, str]:
    """(name, digest) of the profile a version was trained on: its tags, else its bundle."""
    tags = _version_info(registry, version).tags
    if TAG_DATA_PROFILE in tags and TAG_DATA_PROFILE_DIGEST in tags:
        return tags[TAG_DATA_PROFILE], tags[TAG_DATA_PROFILE_DIGEST]
    profile = registry.load_version(version).spec.profile
    return profile.name, profile.digest


def _version_info(registry: ModelRegistry, version: int) -> ModelVersionInfo:
    """A registered version's description; ModelOpsError naming the versions there are."""
    versions = registry.versions()
    for info in versions:
        if info.version == version:
            return info
    known = ", ".join(str(info.version) for info in versions) or "none"
    msg = f"there is no version {version} (registered versions: {known})"
    raise ModelOpsError(msg)


def _text(version: int | None) -> str | None:
    """A version as the audit table keeps it."""
    return None if version is None else str(version)
