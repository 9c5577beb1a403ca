"""The loop for a champion of another profile than Sparkov, in this process and on small data.

For fdh and ulb streams: a champion trained on the profile's history serves its request
schema over HTTP; the ingester replays a file of the profile into it; monitoring reads the
stored scores; retraining learns from the warehouse in the profile's columns; the new
version is promoted and hot-swapped; a version of another profile is refused at promotion
unless the schema change is confirmed.
"""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from fraudops.api.app import create_app
from fraudops.config import Settings
from fraudops.data.profiles import FDH, ULB, DatasetProfile
from fraudops.features.state import InMemoryStateStore
from fraudops.ingest.runner import Ingester, IngestOptions
from fraudops.ingest.sinks import InProcessSink
from fraudops.ingest.sources import FileReplaySource
from fraudops.ingest.spool import Spool
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.models import SchemaChangeError
from fraudops.monitoring.policy import Policy
from fraudops.registry import CHALLENGER, CHAMPION, InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage import Warehouse
from profile_frames import (
    PROFILES,
    ULB_ORIGIN,
    fdh_raw,
    loaded,
    simulated,
    tiny_bundle,
    ulb_raw,
)

TOKEN = "profile-loop-scoring-token-0123456789abcdef"  # noqa: S105 - a test token
HISTORY_DAYS = 10
POLICY = Policy(
    label_delay_days=2.0,
    performance_window_days=3.0,
    retrain_history_days=16.0,
    retrain_validation_days=4.0,
    retrain_trials=0,
    min_frauds=3,
    bootstrap_resamples=20,
)


@pytest.fixture(scope="module")
def sparkov_days() -> pd.DataFrame:
    """Twenty days of 150 simulated cards (about 4,000 transactions), in time order."""
    return simulated(days=20, cards=150, seed=7)


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio."""
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["fdh", "ulb"])
async def test_a_profile_champion_serves_ingests_monitors_retrains_and_swaps(
    name: str, sparkov_days: pd.DataFrame, tmp_path: Path
) -> None:
    """Serve, ingest from a file, monitor, retrain, promote and hot-swap on fdh and ulb."""
    profile, to_raw = PROFILES[name]
    raw = to_raw(sparkov_days)
    frame = loaded(raw, profile)
    split = frame["event_time"].min().normalize() + timedelta(days=HISTORY_DAYS)
    history, stream = frame["event_time"] < split, frame["event_time"] >= split
    stream_file = tmp_path / f"{name}.csv"  # the whole file: history and what followed
    raw.to_csv(stream_file, index=False)

    registry = InMemoryRegistry()
    registry.log_training(
        tiny_bundle(frame.loc[history], profile, trained_until=split),
        input_example=None,  # type: ignore[arg-type]
        dataset_fingerprint=name,
    )
    settings = Settings(home=tmp_path / "home", api_tokens=TOKEN, _env_file=None)  # type: ignore[call-arg]
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    service = ScoringService(
        settings=settings, warehouse=warehouse, registry=registry, store=InMemoryStateStore()
    )
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        await _until_ready(service)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://service",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http:
            # Serve: the OpenAPI document and /v1/score read the profile's own fields.
            document = (await http.get("/openapi.json")).json()
            fields = document["components"]["schemas"][f"{name.capitalize()}Transaction"]
            assert set(profile.required_columns) - {profile.label} <= set(fields["properties"])
            first = _request(frame.loc[history].iloc[-1], profile, suffix="-served")
            scored = await http.post("/v1/score", json=first)
            assert 200 == scored.status_code, scored.text
            sparkov_body = {"trans_num": "x", "cc_num": 1, "amt": 1.0, "unix_time": 1}
            refused = await http.post("/v1/score", json=sparkov_body)
            assert 422 == refused.status_code
            problems = {p["loc"][-1]: p["msg"] for p in refused.json()["detail"]}
            assert "Field required" == problems[profile.amount]

            # Ingest a file of the profile into the service in this process.
            report = await asyncio.to_thread(
                _ingest, stream_file, profile=profile, service=service, state=tmp_path / "ingest"
            )
            assert (len(frame), 0) == (report.stored_new, report.invalid)
            stored = (await http.get(f"/v1/transactions/{first[profile.id_column]}")).json()
            _check_stored(stored, first, profile)
            probe = _request(frame.loc[stream].iloc[-1], profile, suffix="-probe")
            await asyncio.to_thread(_check_rebuilt_state, service, probe)

            # Monitor, retrain on the warehouse in the profile's columns, promote, hot-swap.
            lifecycle = Lifecycle.from_settings(
                settings, warehouse, registry=registry, policy=POLICY, actor="test"
            )
            as_of = frame["event_time"].max().to_pydatetime()
            decision = await asyncio.to_thread(lifecycle.monitor, as_of)
            assert decision.result.performance is not None
            retrained = await asyncio.to_thread(lifecycle.retrain, as_of)
            assert 2 == retrained.registered.version
            assert profile == registry.load_version(2).spec.profile
            assert retrained.rows > 1_000
            await asyncio.to_thread(lifecycle.promote, 2, reason="retrained")
            assert "swapped" == (await asyncio.to_thread(service.reload)).champion.outcome
            last = _request(frame.loc[stream].iloc[-1], profile, suffix="-after")
            after = (await http.post("/v1/score", json=last)).json()
            assert "2" == after["model"]["version"]

            await _check_schema_change(
                lifecycle, service=service, http=http, profile=profile, sparkov=sparkov_days
            )


def _check_rebuilt_state(service: ScoringService, request: dict[str, Any]) -> None:
    """A service restarted on the warehouse rebuilds the profile's online state from the
    stored transactions: it gives a new transaction the live service's features."""
    restarted = ScoringService(
        settings=service.settings,
        warehouse=service.warehouse,
        registry=service.registry,
        store=InMemoryStateStore(),
    )
    restarted.start(block=True)
    try:
        assert restarted.readiness() is None
        features = []
        for running in (service, restarted):
            champion = running.models.champion
            assert champion is not None
            transaction = running.schema.canonical(request)
            features.append(champion.engine.features(champion.record(transaction)))
        np.testing.assert_array_equal(features[0], features[1])
    finally:
        restarted.stop()


def _check_stored(stored: dict[str, Any], sent: dict[str, Any], profile: DatasetProfile) -> None:
    """Stored in canonical names, personal fields masked: the customer as its last digits."""
    record = stored["record"]
    assert (sent[profile.id_column], "masked") == (stored["trans_num"], stored["personal_data"])
    assert sent[profile.amount] == record["amt"]
    assert "cc_num" not in record
    if profile.card_id is not None:
        card = str(sent[profile.card_id])
        assert (card[-4:] if len(card) >= 4 else None) == record["card_last4"]
    else:
        assert sent["V1"] == record["extra_fields"]["V1"]


async def _check_schema_change(
    lifecycle: Lifecycle,
    *,
    service: ScoringService,
    http: httpx.AsyncClient,
    profile: DatasetProfile,
    sparkov: pd.DataFrame,
) -> None:
    """A version of another profile changes the schema: refused, unless confirmed."""
    registry = lifecycle.registry
    other = ULB if profile == FDH else FDH
    other_frame = loaded(_other_raw(other, sparkov), other)
    registry.log_training(
        tiny_bundle(other_frame, other, trained_until=other_frame["event_time"].max()),
        input_example=None,  # type: ignore[arg-type]
        dataset_fingerprint="other",
    )
    with pytest.raises(SchemaChangeError, match="change-schema"):
        lifecycle.promote(3, reason="another schema")
    assert 2 == registry.resolve(CHAMPION).version
    assert "rejected" == (await asyncio.to_thread(service.reload)).challenger.outcome
    await asyncio.to_thread(lifecycle.promote, 3, reason="new feed", change_schema=True)
    assert "swapped" == (await asyncio.to_thread(service.reload)).champion.outcome
    moved = (await http.get("/openapi.json")).json()["components"]["schemas"]
    assert f"{other.name.capitalize()}Transaction" in moved
    assert CHALLENGER not in registry.resolve(CHAMPION).aliases
    assert other == service.schema.profile


def _request(row: "pd.Series[Any]", profile: DatasetProfile, *, suffix: str = "") -> dict[str, Any]:
    """A loaded row as a JSON request of the profile."""
    body: dict[str, Any] = {}
    for column in profile.required_columns:
        if column != profile.label:
            value = row[column]
            body[column] = value.item() if hasattr(value, "item") else value
    spec = profile.timestamps[0]
    moment = row["event_time"].to_pydatetime()
    if spec.unit == "datetime":
        body[spec.column] = moment.isoformat()
    else:
        body[spec.column] = (moment - ULB_ORIGIN).total_seconds()
    body[profile.id_column] = f"{row[profile.id_column]}{suffix}"
    return body


def _ingest(path: Path, *, profile: DatasetProfile, service: ScoringService, state: Path) -> Any:
    """Replay a file of the profile into the service, labels inline; the ingest report."""
    return Ingester(
        FileReplaySource(path, checkpoint=state / "checkpoint.json", profile=profile),
        InProcessSink(service),
        spool=Spool(state / "spool.db", memory_items=10_000, durable=False),
        dead_letter=state / "dead-letter.jsonl",
        options=IngestOptions(batch_size=500, progress_seconds=3600.0),
        schema=service.schema,
    ).run()


def _other_raw(profile: DatasetProfile, sparkov: pd.DataFrame) -> pd.DataFrame:
    return fdh_raw(sparkov) if profile == FDH else ulb_raw(sparkov)


async def _until_ready(service: ScoringService) -> None:
    for _ in range(500):
        if service.readiness() is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(service.readiness())
