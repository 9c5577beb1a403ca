"""A scoring service on real parts (SQLite warehouse, trained XGBoost) behind an ASGI client."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN, transaction_json

from fraudops.api.app import create_app
from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.state import InMemoryStateStore
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage.warehouse import Warehouse
from fraudops.training.bundle import ModelBundle


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio (uvicorn's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def sample_frame(sample_path: Path) -> pd.DataFrame:
    """The real Sparkov sample, loaded and validated."""
    return load_transactions(sample_path, SPARKOV).frame


@pytest.fixture(scope="session")
def served_bundle(
    train_bundle: Callable[..., ModelBundle], sample_frame: pd.DataFrame
) -> ModelBundle:
    """A small XGBoost bundle trained on the sample."""
    return train_bundle(sample_frame, threshold=0.5, seed=3)


@pytest.fixture(scope="session")
def other_bundle(
    train_bundle: Callable[..., ModelBundle], sample_frame: pd.DataFrame
) -> ModelBundle:
    """A second bundle (another seed and threshold), to be a challenger or a new champion."""
    return train_bundle(sample_frame, threshold=0.4, seed=11)


@pytest.fixture
def registry(served_bundle: ModelBundle, sample_frame: pd.DataFrame) -> InMemoryRegistry:
    """A registry whose champion is the served bundle."""
    registry = InMemoryRegistry()
    registry.log_training(
        served_bundle, input_example=sample_frame.head(3), dataset_fingerprint="sample"
    )
    return registry


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with real tokens and a home of the test's own."""
    return Settings(
        home=tmp_path / "home",
        api_tokens=SCORING_TOKEN,
        admin_tokens=ADMIN_TOKEN,
        batch_limit=50,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def service(settings: Settings, registry: InMemoryRegistry, tmp_path: Path) -> ScoringService:
    """The scoring service on a SQLite warehouse and in-process feature state."""
    return ScoringService(
        settings=settings,
        warehouse=Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}"),
        registry=registry,
        store=InMemoryStateStore(),
    )


@pytest.fixture
async def client(settings: Settings, service: ScoringService) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the started app (lifespan run), authorised with the scoring token."""
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if service.readiness() is None:
                break
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://service",
            headers={"Authorization": f"Bearer {SCORING_TOKEN}"},
        ) as http:
            yield http


@pytest.fixture
def bodies(sample_frame: pd.DataFrame) -> Iterator[list[dict[str, Any]]]:
    """The sample's first 300 transactions in time order, as request bodies."""
    ordered = sample_frame.sort_values("event_time", kind="stable")
    yield [transaction_json(ordered, i) for i in range(300)]
