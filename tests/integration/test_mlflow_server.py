"""The registry against a real `mlflow server` process that stores and serves the artifacts."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions, read_table
from fraudops.data.validation import check_frame
from fraudops.registry import CHALLENGER, CHAMPION, MlflowRegistry, dataset_fingerprint
from fraudops.training.bundle import ModelBundle
from polling import POLL
from ports import free_port

pytestmark = pytest.mark.integration

MLFLOW = Path(sys.executable).parent / "mlflow"
STARTUP_TIMEOUT_S = 120.0


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the workers it spawned (its whole process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived the server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`mlflow server` on SQLite with proxied artifacts; its URL and artifact folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts = root / "artifacts"
    port = free_port()
    log_path = root / "server.log"
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    } | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # as deploy/compose.yaml: no job runner
    command = [
        str(MLFLOW),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, cwd=root, env=environment, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if POLL.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not up after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)
        yield url, artifacts
    finally:
        stop_group(process)


@pytest.fixture
def mlflow_pointed_at(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow's global tracking and registry URIs on the server, restored afterwards."""
    url, _ = server
    # Environment first, so that monkeypatch removes what mlflow.set_*_uri also exports.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", url)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    yield url
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]


def test_train_register_and_load_by_alias_through_the_server(
    sample_path: Path,
    server: tuple[str, Path],
    mlflow_pointed_at: str,
    tmp_path: Path,
    train_bundle: Callable[..., ModelBundle],
) -> None:
    """Champion then challenger are registered via the server; the champion scores raw rows."""
    _, artifacts = server
    frame = load_transactions(sample_path, SPARKOV).frame
    raw = read_table(sample_path, SPARKOV).head(200)
    champion, challenger = (
        train_bundle(frame, threshold=0.5, seed=1),
        train_bundle(frame, threshold=0.3, seed=2),
    )
    report = tmp_path / "report.md"
    report.write_text("# report\n", encoding="utf-8")
    settings = Settings(_env_file=None, home=tmp_path / "home", tracking_uri=mlflow_pointed_at)
    registry = MlflowRegistry(settings)

    first = registry.log_training(
        champion,
        input_example=frame.head(5),
        dataset_fingerprint=dataset_fingerprint(frame),
        artifacts={"markdown": report},
    )
    second = registry.log_training(
        challenger, input_example=raw.head(5), dataset_fingerprint=dataset_fingerprint(frame)
    )
    scored = mlflow.pyfunc.load_model("models:/fraud-detector@champion").predict(raw)

    assert [(1, CHAMPION), (2, CHALLENGER)] == [(r.version, r.alias) for r in (first, second)]
    expected = champion.score_frame(check_frame(raw, SPARKOV).clean_frame())
    np.testing.assert_array_equal(expected, scored["fraud_probability"].to_numpy())
    np.testing.assert_array_equal((expected >= 0.5).astype(np.int64), scored["decision"])
    assert 0.3 == registry.load(CHALLENGER).threshold
    assert any(artifacts.rglob("bundle.pkl")), "artifacts are stored by the server"
    assert any(artifacts.rglob("report.md"))
    assert not (tmp_path / "home").exists(), "nothing is written to the embedded home"
