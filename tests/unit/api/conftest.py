"""A scoring service on real parts (SQLite warehouse, trained XGBoost) behind an ASGI client."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN, transaction_json
from served_app import started_app

from embedded_service import sqlite_service
from fraudops.config import Settings
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio (uvicorn's loop)."""
    return "asyncio"


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
    return sqlite_service(settings, registry, tmp_path)


@pytest.fixture
async def client(settings: Settings, service: ScoringService) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the started app (lifespan run), authorised with the scoring token."""
    async with started_app(settings, service) as (_, http):
        yield http


@pytest.fixture
def bodies(sample_frame: pd.DataFrame) -> Iterator[list[dict[str, Any]]]:
    """The sample's first 300 transactions in time order, as request bodies."""
    ordered = sample_frame.sort_values("event_time", kind="stable")
    yield [transaction_json(ordered, i) for i in range(300)]
