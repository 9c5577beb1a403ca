"""POST /v1/retrain and GET /v1/jobs/{id}: a retraining as a background job of the service."""

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN
from fastapi import FastAPI
from served_app import started_app

from fraudops.config import Settings
from fraudops.lifecycle.jobs import JobRunner
from fraudops.scoring.service import ScoringService
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import LabelRecord, ScoredTransaction, ScoreRecord, Warehouse

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
POLL_SECONDS = 0.05
POLLS = 1_200  # a bound on waiting for a job, never asserted on


@dataclass
class Served:
    """The started app and an HTTP client of it (scoring token by default)."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def jobs(self) -> JobRunner:
        """The app's job runner."""
        runner: JobRunner = self.app.state.jobs
        return runner


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The API tests' settings, with a policy that retrains with a single tuning trial."""
    policy = tmp_path / "policy.toml"
    policy.write_text("retrain_trials = 1\n", encoding="utf-8")
    return Settings(
        home=tmp_path / "home",
        api_tokens=SCORING_TOKEN,
        admin_tokens=ADMIN_TOKEN,
        policy_file=policy,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def served(settings: Settings, service: ScoringService) -> AsyncIterator[Served]:
    """The app started (lifespan run) and a client of it."""
    async with started_app(settings, service) as (app, http):
        yield Served(app=app, http=http)
        active = app.state.jobs.active()
        if active is not None:  # let a job finish before the warehouse goes away
            await asyncio.to_thread(app.state.jobs.wait, active.id)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """Four weeks of 300 simulated cards: enough labelled history for a retraining."""
    return simulate(SimulationConfig(days=28, cards=300, seed=5))


def store_history(warehouse: Warehouse, frame: pd.DataFrame) -> None:
    """Store a simulated frame as served transactions, each fraud labelled two days later."""
    score = ScoreRecord(
        model_name="fraud-detector",
        model_version="1",
        fraud_probability=0.0,
        decision="approve",
        scored_at=datetime(2024, 1, 1),
    )
    records = frame.drop(columns=["is_fraud", "fraud_scenario"]).to_dict(orient="records")
    warehouse.store_scored_batch([ScoredTransaction(transaction=r, score=score) for r in records])
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=True,
                label_time=datetime.fromisoformat(row.trans_date_trans_time) + timedelta(days=2),
                source="chargeback",
            )
            for row in frame[frame["is_fraud"] == 1].itertuples()
        ]
    )


async def finished(http: httpx.AsyncClient, status_url: str) -> dict[str, Any]:
    """The job's status once it has finished, polled as a client would."""
    job: dict[str, Any] = {}
    for _ in range(POLLS):
        job = (await http.get(status_url, headers=ADMIN)).json()
        if job["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(POLL_SECONDS)
    return job


async def test_a_retraining_registers_a_challenger_that_is_then_shadow_scored(
    served: Served, service: ScoringService, simulated: pd.DataFrame
) -> None:
    """202 with the status URL; the job registers v2 as challenger and the service loads it."""
    store_history(service.warehouse, simulated)

    started = await served.http.post("/v1/retrain", json={"trigger": "analyst"}, headers=ADMIN)

    assert 202 == started.status_code
    accepted = started.json()
    assert (True, "retrain") == (accepted["accepted"], accepted["kind"])
    assert f"/v1/jobs/{accepted['job_id']}" == accepted["status_url"]
    assert accepted["status_url"] == started.headers["location"]
    job = await finished(served.http, accepted["status_url"])
    assert ("succeeded", None) == (job["status"], job["error"])
    result = job["result"]
    assert (2, "challenger", "analyst", "api") == (
        result["version"],
        result["alias"],
        result["trigger"],
        result["actor"],
    )
    assert "2024-01-28" <= result["as_of"]  # the latest stored transaction
    assert {"outcome": "swapped", "version": "2", "previous": None, "detail": None} == result[
        "reload"
    ]["challenger"]
    assert service.models.challenger is not None
    assert 2 == service.models.challenger.version
    event = service.warehouse.events(kind="retrain")[0]
    assert ("analyst", "api", "registered", "2") == (
        event.trigger,
        event.actor,
        event.verdict,
        event.challenger_version,
    )


async def test_a_retraining_without_data_fails_and_says_why(served: Served) -> None:
    """An empty warehouse: the job fails with the reason, and the service keeps its models."""
    started = await served.http.post("/v1/retrain", headers=ADMIN)

    job = await finished(served.http, started.json()["status_url"])

    assert ("failed", None) == (job["status"], job["result"])
    assert "the warehouse holds no transactions" in job["error"]


async def test_while_a_job_runs_a_retrain_returns_that_job(served: Served) -> None:
    """One job at a time: the running job comes back, accepted false, nothing new started."""
    release = threading.Event()
    running = served.jobs.submit("retrain", lambda: {"held": release.wait(60)})

    answer = await served.http.post("/v1/retrain", json={}, headers=ADMIN)
    release.set()

    assert 202 == answer.status_code
    body = answer.json()
    assert (running.job.id, False) == (body["job_id"], body["accepted"])
    assert "already" in body["detail"]
    assert {"held": True} == (await finished(served.http, body["status_url"]))["result"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"as_of": "yesterday"}, "as_of"),
        ({"trigger": ""}, "trigger"),
        ({"trigger": 5}, "trigger"),
        ({"trigger": "x" * 65}, "trigger"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_bodies_are_a_422_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    """Each bad field is named in the 422's detail; no job starts."""
    answer = await served.http.post("/v1/retrain", json=body, headers=ADMIN)

    assert 422 == answer.status_code
    assert any(field in map(str, problem["loc"]) for problem in answer.json()["detail"])
    assert served.jobs.active() is None


async def test_broken_json_is_a_422(served: Served) -> None:
    """A body that is not JSON is a client error, never a 500."""
    answer = await served.http.post(
        "/v1/retrain",
        content=b'{"trigger": ',
        headers=ADMIN | {"Content-Type": "application/json"},
    )

    assert 422 == answer.status_code


async def test_only_admins_retrain_or_read_jobs(served: Served) -> None:
    """No token: 401; a scoring token: 403; for both endpoints."""
    anonymous = {"Authorization": ""}
    codes = [
        (await served.http.post("/v1/retrain", headers=anonymous)).status_code,
        (await served.http.post("/v1/retrain")).status_code,
        (await served.http.get("/v1/jobs/abc", headers=anonymous)).status_code,
        (await served.http.get("/v1/jobs/abc")).status_code,
    ]

    assert [401, 403, 401, 403] == codes
    assert served.jobs.active() is None


async def test_an_unknown_job_is_a_404_that_says_why(served: Served) -> None:
    """A job id this process never gave (or forgot on restart) is a 404 with a reason."""
    answer = await served.http.get("/v1/jobs/0123456789abcdef", headers=ADMIN)

    assert 404 == answer.status_code
    assert "no job '0123456789abcdef'" in answer.json()["detail"]
    assert "until it restarts" in answer.json()["detail"]


async def test_the_job_endpoints_are_documented(served: Served) -> None:
    """The OpenAPI document gives both endpoints their bodies, answers and admin security."""
    document = (await served.http.get("/openapi.json")).json()

    retrain = document["paths"]["/v1/retrain"]["post"]
    body = retrain["requestBody"]["content"]["application/json"]["schema"]
    assert any(
        option.get("$ref", "").endswith("/RetrainRequest") for option in body.get("anyOf", [body])
    )
    accepted = retrain["responses"]["202"]["content"]["application/json"]["schema"]
    assert accepted["$ref"].endswith("/JobAccepted")
    assert {"202", "401", "403", "422"} <= set(retrain["responses"])
    jobs = document["paths"]["/v1/jobs/{job_id}"]["get"]
    answer = jobs["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/JobOut")
    assert {"200", "401", "403", "404"} <= set(jobs["responses"])
    for operation in (retrain, jobs):
        assert [{"HTTPBearer": []}] == operation["security"]
