"""The API tests' service and app: a ScoringService on a SQLite warehouse and in-process
feature state (tests/embedded_service.py), and the app started (lifespan run, ready) with an
ASGI client of it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from api_bodies import SCORING_TOKEN
from fastapi import FastAPI

from fraudops.api.app import create_app
from fraudops.config import Settings
from fraudops.scoring.service import ScoringService


@asynccontextmanager
async def started_app(
    settings: Settings, service: ScoringService
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app of `service` started, once ready (or after 4 s), and a client authorised with
    the scoring token."""
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if service.readiness() is None:
                break
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://service",
            headers={"Authorization": f"Bearer {SCORING_TOKEN}"},
        ) as http:
            yield app, http
