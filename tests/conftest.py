"""Fixtures shared by every test folder."""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
POSTGRES_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# As the CLI does: no MLflow usage telemetry and no download progress bars in tests.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The real Sparkov sample in ../shared/data beside the repository (never copied into it).

    FRAUDOPS_SHARED_DATA names another folder holding it.
    """
    folder = Path(os.environ.get("FRAUDOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = (folder / "sparkov_sample_9999.csv.gz").resolve()
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
