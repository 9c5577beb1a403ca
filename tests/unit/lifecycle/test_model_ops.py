"""`fraudops models` operations: list, promote, roll back; audited, tagged, service reloaded."""

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest
import uvicorn
from rich.console import Console

from fraudops.api.app import create_app
from fraudops.config import Settings
from fraudops.data.profiles import ULB
from fraudops.features.state import InMemoryStateStore
from fraudops.lifecycle.models import (
    ModelOpsError,
    SchemaChangeError,
    list_models,
    promote,
    render_models,
    rollback,
)
from fraudops.registry import CHALLENGER, CHAMPION, InMemoryRegistry
from fraudops.registry.base import ModelVersionInfo
from fraudops.scoring.service import ScoringService
from fraudops.storage import LifecycleEvent, Warehouse
from fraudops.training.bundle import ModelBundle
from profile_frames import loaded, simulated, tiny_bundle, ulb_raw

WAIT = 30.0  # a bound on waiting for the server to start, never asserted on


@pytest.fixture
def registry(
    served_bundle: ModelBundle, other_bundle: ModelBundle, sample_frame: pd.DataFrame
) -> InMemoryRegistry:
    """Version 1 champion, version 2 challenger."""
    registry = InMemoryRegistry()
    for bundle in (served_bundle, other_bundle):
        registry.log_training(bundle, input_example=sample_frame.head(3), dataset_fingerprint="s")
    return registry


def aliases(registry: InMemoryRegistry) -> dict[str, int]:
    """Where champion and challenger point."""
    found = {}
    for alias in (CHAMPION, CHALLENGER):
        with contextlib.suppress(LookupError):
            found[alias] = registry.resolve(alias).version
    return found


def test_promoting_the_challenger_by_hand(registry: InMemoryRegistry, warehouse: Warehouse) -> None:
    """It becomes champion, stops being challenger, is tagged and audited as manual."""
    change = promote(
        2, registry=registry, warehouse=warehouse, actor="alice", reason="better", settings=None
    )

    assert {CHAMPION: 2} == aliases(registry)
    assert (2, 1, "not_configured") == (change.champion, change.previous, change.notified)
    assert "v2 promoted to champion (was v1)" in change.summary()
    tags = registry.resolve(CHAMPION).tags
    assert ("1", "manual:alice", "better") == (
        tags["fraudops.previous_champion"],
        tags["fraudops.promoted_by"],
        tags["fraudops.promotion_reason"],
    )
    event = warehouse.events()[0]
    assert ("promote", "manual", "alice", "promoted", "2", None) == (
        event.kind,
        event.trigger,
        event.actor,
        event.verdict,
        event.champion_version,
        event.challenger_version,
    )
    assert {"reason": "better", "version": 2, "previous_champion": 1} == event.detail


def test_promoting_what_cannot_be_promoted_is_refused(
    registry: InMemoryRegistry, warehouse: Warehouse
) -> None:
    """An unknown version names the versions there are; the champion cannot be promoted."""
    with pytest.raises(ModelOpsError, match=r"no version 7 \(registered versions: 2, 1\)"):
        promote(7, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    with pytest.raises(ModelOpsError, match="v1 is already the champion"):
        promote(1, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    assert [] == warehouse.events()
    assert {CHAMPION: 1, CHALLENGER: 2} == aliases(registry)


def test_rollback_steps_back_one_promotion_at_a_time(
    registry: InMemoryRegistry,
    warehouse: Warehouse,
    served_bundle: ModelBundle,
    sample_frame: pd.DataFrame,
) -> None:
    """v1 -> v2 -> v3 promoted, then rollbacks give v2, then v1, then a clear error."""
    promote(2, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    registry.log_training(served_bundle, input_example=sample_frame.head(3), dataset_fingerprint="")
    promote(3, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)

    first = rollback(
        registry=registry, warehouse=warehouse, actor="bob", reason="alerts", settings=None
    )
    second = rollback(registry=registry, warehouse=warehouse, actor="bob", reason="", settings=None)

    assert [(2, 3), (1, 2)] == [(c.champion, c.previous) for c in (first, second)]
    assert {CHAMPION: 1} == aliases(registry)
    assert "3" == registry.versions()[1].tags["fraudops.rolled_back_from"]
    event = warehouse.events()[1]
    assert ("rollback", "manual", "bob", "rolled_back", "2") == (
        event.kind,
        event.trigger,
        event.actor,
        event.verdict,
        event.champion_version,
    )
    assert {"reason": "alerts", "version": 2, "previous_champion": 3} == event.detail
    with pytest.raises(ModelOpsError, match="champion v1 replaced no earlier champion"):
        rollback(registry=registry, warehouse=warehouse, actor="bob", reason="", settings=None)


def test_rollback_reads_the_version_tag_when_the_audit_trail_has_no_promotion(
    registry: InMemoryRegistry, warehouse: Warehouse
) -> None:
    """A champion tagged fraudops.previous_champion (promoted elsewhere) rolls back to it."""
    registry.set_alias(2, CHAMPION)
    registry.delete_alias(CHALLENGER)
    registry.set_version_tags(2, {"fraudops.previous_champion": "1"})

    change = rollback(registry=registry, warehouse=warehouse, actor="c", reason="", settings=None)

    assert (1, 2) == (change.champion, change.previous)


def test_list_shows_each_version_with_its_aliases_metrics_and_last_decision(
    registry: InMemoryRegistry, warehouse: Warehouse
) -> None:
    """Newest first; aliases, validation metrics, the latest audited decision about it."""
    promote(2, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)

    rows = list_models(registry, warehouse)

    assert [2, 1] == [row.version for row in rows]
    assert [(CHAMPION,), ()] == [row.aliases for row in rows]
    assert [0.75, 0.75] == [row.validation_average_precision for row in rows]
    assert ["xgboost", "xgboost"] == [row.model_type for row in rows]
    assert str(rows[0].last_decision).startswith("promote: promoted (manual)")
    assert str(rows[1].last_decision).startswith("promote: replaced by v2 (manual)")
    assert 2 == rows[0].to_dict()["version"]
    console = Console(record=True, width=200)
    console.print(render_models(rows))
    table = console.export_text()
    assert "champion" in table
    assert "0.7500" in table


def test_people_s_actions_on_the_trail_do_not_hide_the_last_decisions(
    registry: InMemoryRegistry, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Console logins and labels after a promotion, beyond the trail read, leave it listed."""
    monkeypatch.setattr("fraudops.lifecycle.models.TRAIL_LIMIT", 3)
    promote(2, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    for kind in ("login", "label", "label", "logout"):
        warehouse.record_event(
            LifecycleEvent(kind=kind, trigger="console", actor="console:alice", verdict="ok")
        )

    rows = list_models(registry, warehouse)

    decisions = [str(r.last_decision).split(" (")[0] for r in rows]
    assert decisions == ["promote: promoted", "promote: replaced by v2"]


@dataclass
class RunningService:
    """A real uvicorn server of the scoring app, in a thread of this process."""

    url: str
    service: ScoringService


@pytest.fixture
def running_service(
    registry: InMemoryRegistry, warehouse: Warehouse, tmp_path: Path
) -> Iterator[tuple[RunningService, Settings]]:
    """The scoring service on a free local port, and settings naming it with the admin token."""
    admin = "admin-" + secrets.token_urlsafe(24)
    settings = Settings(
        home=tmp_path / "home",
        api_tokens="score-" + secrets.token_urlsafe(24),
        admin_tokens=admin,
        _env_file=None,  # type: ignore[call-arg]
    )
    service = ScoringService(
        settings=settings, warehouse=warehouse, registry=registry, store=InMemoryStateStore()
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, service=service), port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(int(WAIT / 0.05)):
        if server.started and service.readiness() is None:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    yield RunningService(url=url, service=service), settings.model_copy(update={"service_url": url})
    server.should_exit = True
    thread.join(WAIT)


def test_a_promotion_hot_swaps_the_running_service(
    running_service: tuple[RunningService, Settings],
    registry: InMemoryRegistry,
    warehouse: Warehouse,
) -> None:
    """The service is told to reload and serves the new champion, with no restart."""
    running, settings = running_service
    assert (1, 2) == (
        running.service.models.champion.version,
        running.service.models.challenger.version,
    )  # type: ignore[union-attr]

    change = promote(
        2, registry=registry, warehouse=warehouse, actor="a", reason="", settings=settings
    )

    assert "reloaded" == change.notified
    assert running.service.models.champion is not None
    assert 2 == running.service.models.champion.version
    assert running.service.models.challenger is None


@pytest.fixture(scope="module")
def ulb_bundle() -> ModelBundle:
    """A tiny model of the ulb profile (no card, no merchant: another request schema)."""
    frame = loaded(ulb_raw(simulated(days=4, cards=40, seed=2)), ULB)
    return tiny_bundle(frame, ULB, trained_until=frame["event_time"].max())


def test_a_version_of_another_profile_is_refused_unless_the_schema_change_is_said(
    registry: InMemoryRegistry, warehouse: Warehouse, ulb_bundle: ModelBundle
) -> None:
    """A ulb version cannot replace a sparkov champion by accident; with the flag it can,
    audited as a schema change, and rolling back to sparkov needs the flag too."""
    registry.log_training(ulb_bundle, input_example=None, dataset_fingerprint="u")  # type: ignore[arg-type]
    with pytest.raises(SchemaChangeError) as refused:
        promote(3, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    assert (
        "v3 was trained on profile 'ulb' and the champion v1 on 'sparkov': promoting it changes "
        "the request schema of /v1/score"
    ) in str(refused.value)
    assert ([], {CHAMPION: 1, CHALLENGER: 3}) == (warehouse.events(), aliases(registry))

    promote(
        3,
        registry=registry,
        warehouse=warehouse,
        actor="a",
        reason="new feed",
        settings=None,
        change_schema=True,
    )
    assert 3 == registry.resolve(CHAMPION).version
    assert "trained on profile 'ulb'" in warehouse.events()[0].detail["schema_change"]
    with pytest.raises(SchemaChangeError, match="'sparkov' and the champion v3 on 'ulb'"):
        rollback(registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)


class UntaggedRegistry(InMemoryRegistry):
    """A registry whose versions predate the profile digest tag."""

    def versions(self) -> list[ModelVersionInfo]:
        """The versions without their data_profile_digest tag."""
        return [
            replace(info, tags={k: v for k, v in info.tags.items() if k != "data_profile_digest"})
            for info in super().versions()
        ]


def test_a_version_without_the_digest_tag_is_judged_by_its_bundle(
    served_bundle: ModelBundle,
    other_bundle: ModelBundle,
    warehouse: Warehouse,
    ulb_bundle: ModelBundle,
) -> None:
    """Versions registered before the digest tag still compare by the profile they read."""
    registry = UntaggedRegistry()
    for bundle in (served_bundle, other_bundle, ulb_bundle):
        registry.log_training(bundle, input_example=None, dataset_fingerprint="s")  # type: ignore[arg-type]
    assert "data_profile_digest" not in registry.versions()[0].tags
    with pytest.raises(SchemaChangeError):
        promote(3, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    promote(2, registry=registry, warehouse=warehouse, actor="a", reason="", settings=None)
    assert 2 == registry.resolve(CHAMPION).version
