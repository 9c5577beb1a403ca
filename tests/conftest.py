"""Fixtures shared by every test folder."""

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# No test reads or writes the FRAUDOPS_HOME of whoever runs them (after `make demo`, ./.fraudops
# holds a champion): each test process gets an empty home of its own; tests pass their own.
os.environ["FRAUDOPS_HOME"] = tempfile.mkdtemp(prefix="fraudops-test-home-")

# Tests run on every core at once (make test): OpenMP threads that spin while they wait
# (XGBoost's) would then steal the cores the other workers need. Set before any import
# loads OpenMP; the service processes the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# And one BLAS thread per process, for the same reason: OpenBLAS's threads spin between
# calls, so a worker fitting a logistic regression kept both cores busy (the training and
# scoring-model tests, three runs each: 69.5 to 78.7 s of CPU with them, 65.9 to 72.0 s with
# one). The variable reaches the BLAS libraries loaded from here on (scipy's); numpy's,
# which a plugin has loaded already, is limited in place below.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd
import pytest
import sqlalchemy as sa
from threadpoolctl import threadpool_limits

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.registry.memory import InMemoryRegistry

if TYPE_CHECKING:
    from fraudops.scoring.service import ScoringService
    from fraudops.training.bundle import ModelBundle

threadpool_limits(limits=1, user_api="blas")

REPO = Path(__file__).resolve().parents[1]
POSTGRES_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# As the CLI does: no MLflow usage telemetry and no download progress bars in tests.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# One card-hash key for the test session: warehouses the tests fill and the service
# processes they start must hash card numbers alike, as replicas in production do.
CARD_HASH_KEY = os.environ.setdefault("FRAUDOPS_CARD_HASH_KEY", secrets.token_hex(32))


@pytest.fixture(autouse=True)
def _settings_read_per_test() -> Iterator[None]:
    """The CLI's cached settings are read again for each test, from its own environment."""
    from fraudops.config import get_settings  # noqa: PLC0415

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The real Sparkov sample kept in the repository (tests/data, see its README)."""
    path = REPO / "tests" / "data" / "sparkov_sample_9999.csv.gz"
    if not path.is_file():
        pytest.fail(f"the real Sparkov sample is missing: expected it at {path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL on the real PostgreSQL whose search_path is a schema of this session, dropped after.

    FRAUDOPS_TEST_POSTGRES_URL names the server. If it is unreachable the test is skipped,
    except under CI=true, where it fails: CI must run the PostgreSQL tests.
    """
    server = sa.make_url(os.environ.get("FRAUDOPS_TEST_POSTGRES_URL", POSTGRES_DEFAULT_URL))
    schema = f"fraudops_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL is unreachable at {server.render_as_string()}: {error.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the PostgreSQL tests must run, not skip)")
        pytest.skip(message)
    try:
        url = server.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> Iterator[str]:
    """postgres_url, with its schema emptied after the test so the next one starts bare."""
    yield postgres_url
    schema = str(sa.make_url(postgres_url).query["options"]).removeprefix("-csearch_path=")
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


@pytest.fixture(scope="session")
def train_bundle() -> Callable[..., "ModelBundle"]:
    """A trainer of small real XGBoost bundles, for the registry tests (unit and server)."""
    from xgboost import XGBClassifier  # noqa: PLC0415 - only the registry tests need it

    from fraudops.data.profiles import SPARKOV  # noqa: PLC0415
    from fraudops.features.batch import batch_features  # noqa: PLC0415
    from fraudops.features.spec import MS_PER_DAY, fit_feature_spec  # noqa: PLC0415
    from fraudops.training.bundle import ModelBundle  # noqa: PLC0415

    def train(frame: pd.DataFrame, *, threshold: float, seed: int) -> ModelBundle:
        """A small XGBoost bundle on a loaded frame's features."""
        spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=7 * MS_PER_DAY)
        estimator = XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1, random_state=seed)
        estimator.fit(batch_features(frame, spec), frame["is_fraud"].to_numpy())
        return ModelBundle(
            spec=spec,
            estimator=estimator,
            threshold=threshold,
            model_type="xgboost",
            params={"n_estimators": 15, "max_depth": 3},
            metrics={"validation_average_precision": 0.75, "validation_f1": 0.5},
            training={"train_start": "2019-01-01T00:00:00", "train_end": "2019-10-01T00:00:00"},
        )

    return train


REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the real Redis; each test keeps to its own key prefix and clears it.

    FRAUDOPS_TEST_REDIS_URL names the server. If it is unreachable the test is skipped,
    except under CI=true, where it fails: CI must run the Redis tests.
    """
    import redis  # noqa: PLC0415 - only the Redis tests need it

    from fraudops.features.redis_store import RedisStateStore  # noqa: PLC0415

    url = os.environ.get("FRAUDOPS_TEST_REDIS_URL", REDIS_DEFAULT_URL)
    store = RedisStateStore.from_url(url)
    try:
        store.client.ping()
    except redis.RedisError as error:
        message = f"Redis is unreachable at {store.address}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the Redis tests must run, not skip)")
        pytest.skip(message)
    finally:
        store.close()
    return url


# --- a served model, shared by the API and ingest tests ---------------------------------------


@pytest.fixture(scope="session")
def sample_frame(sample_path: Path) -> pd.DataFrame:
    """The real Sparkov sample, loaded and validated."""
    return load_transactions(sample_path, SPARKOV).frame


@pytest.fixture(scope="session")
def served_bundle(
    train_bundle: Callable[..., "ModelBundle"], sample_frame: pd.DataFrame
) -> "ModelBundle":
    """A small XGBoost bundle trained on the sample."""
    return train_bundle(sample_frame, threshold=0.5, seed=3)


@pytest.fixture(scope="session")
def other_bundle(
    train_bundle: Callable[..., "ModelBundle"], sample_frame: pd.DataFrame
) -> "ModelBundle":
    """A second bundle (another seed and threshold), to be a challenger or a new champion."""
    return train_bundle(sample_frame, threshold=0.4, seed=11)


@pytest.fixture
def registry(served_bundle: "ModelBundle", sample_frame: pd.DataFrame) -> InMemoryRegistry:
    """A registry whose champion is the served bundle."""
    registry = InMemoryRegistry()
    registry.log_training(
        served_bundle, input_example=sample_frame.head(3), dataset_fingerprint="sample"
    )
    return registry


@pytest.fixture
def in_process_service(tmp_path: Path, registry: InMemoryRegistry) -> Iterator["ScoringService"]:
    """A started scoring service in this process: SQLite warehouse, in-process state."""
    from embedded_service import sqlite_service  # noqa: PLC0415
    from fraudops.config import Settings  # noqa: PLC0415

    settings = Settings(home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]
    running = sqlite_service(settings, registry, tmp_path)
    running.start(block=True)
    yield running
    running.stop()


# The longest tests go first, the end-to-end loop first of all: with the suite spread over
# workers (make test), the long ones then overlap the many short ones instead of ending last.
_FIRST = ("tests/e2e/", "tests/airflow/", "tests/integration/")
# The three longest (minutes each), each at the head of its own worker's share, so that all
# three start at once instead of queueing behind one another on the first worker.
_LONGEST = (
    "tests/e2e/test_closed_loop.py",
    "tests/airflow/",
    "tests/integration/test_deploy_topology.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the run: end to end, Airflow, integration, then unit tests (stable within each);
    under pytest-xdist, the longest tests head each worker's share."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, prefix in enumerate(_FIRST) if path.startswith(prefix)), len(_FIRST))

    items.sort(key=rank)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        items[:] = _shares(items, workers)


def _shares(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The items as `workers` consecutive shares, each starting with some of the longest.

    pytest-xdist's work-stealing scheduler hands the first worker len // workers of the
    items, the next worker len // (workers - 1) of what is left, and so on (the rest is then
    stolen from the back of the longest queue); the shares are cut to those sizes. Every
    worker orders the items alike, as pytest-xdist requires. Were the split to differ, only
    the start times would: every test still runs once.
    """
    longest = [[i for i in items if i.nodeid.startswith(prefix)] for prefix in _LONGEST]
    heads = {id(i) for group in longest for i in group}
    rest = iter([i for i in items if id(i) not in heads])
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for k, group in enumerate(longest):
        shares[k % workers] += group
    remaining = len(items)
    for k, share in enumerate(shares):
        size = remaining // (workers - k)
        remaining -= size
        share += [next(rest) for _ in range(max(0, size - len(share)))]
    return [i for share in shares for i in share] + list(rest)
