"""MlflowRegistry on an embedded SQLite store: runs, pyfunc models, versions and aliases."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PyFuncModel

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions, read_table
from fraudops.data.validation import check_frame
from fraudops.features.spec import MS_PER_DAY
from fraudops.registry import (
    CHALLENGER,
    CHAMPION,
    MlflowRegistry,
    ModelNotFoundError,
    RegisteredVersion,
    dataset_fingerprint,
    git_revision,
    score_transactions,
)
from fraudops.registry.tracking import _BundleCache
from fraudops.training.bundle import ModelBundle

SCORED_ROWS = 300


@dataclass(frozen=True)
class Trained:
    """The sample as loaded and as read raw, and two bundles trained on it."""

    frame: pd.DataFrame
    raw: pd.DataFrame
    first: ModelBundle
    second: ModelBundle


@dataclass(frozen=True)
class Registered:
    """A registry on a fresh embedded store with both bundles registered in order."""

    settings: Settings
    registry: MlflowRegistry
    first: RegisteredVersion
    second: RegisteredVersion
    evaluation_dir: Path


@pytest.fixture(scope="module")
def trained(sample_path: Path, train_bundle: Callable[..., ModelBundle]) -> Trained:
    """Bundles trained once for the module."""
    frame = load_transactions(sample_path, SPARKOV).frame
    return Trained(
        frame=frame,
        raw=read_table(sample_path, SPARKOV),
        first=train_bundle(frame, threshold=0.5, seed=1),
        second=train_bundle(frame, threshold=0.3, seed=2),
    )


@pytest.fixture(scope="module")
def registered(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Both bundles registered, with plots and a report, in a home that did not exist."""
    home = tmp_path_factory.mktemp("registry") / "home"
    evaluation = tmp_path_factory.mktemp("evaluation")
    (evaluation / "plots").mkdir()
    (evaluation / "plots" / "pr_curve.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (evaluation / "report.md").write_text("# report\n", encoding="utf-8")
    settings = Settings(_env_file=None, home=home)
    registry = MlflowRegistry(settings)
    fingerprint = dataset_fingerprint(trained.frame)
    first = registry.log_training(
        trained.first,
        input_example=trained.frame.head(5),
        dataset_fingerprint=fingerprint,
        metrics={"test_recall": 0.6},
        artifacts={
            "pr_curve": evaluation / "plots" / "pr_curve.png",
            "markdown": evaluation / "report.md",
        },
    )
    second = registry.log_training(
        trained.second, input_example=trained.raw.head(5), dataset_fingerprint=fingerprint
    )
    return Registered(settings, registry, first, second, evaluation)


@pytest.fixture
def mlflow_pointed_at(registered: Registered, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow's global tracking and registry URIs on the test store, restored afterwards."""
    uri = registered.settings.resolved_tracking_uri
    # Environment first, so that monkeypatch removes what mlflow.set_*_uri also exports.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]


def clean_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw rows prepared the way the readers prepare them."""
    return check_frame(raw, SPARKOV).clean_frame()


def test_first_version_is_champion_second_challenger(registered: Registered) -> None:
    """Version 1 becomes champion, version 2 challenger; resolve follows the aliases."""
    assert (1, CHAMPION) == (registered.first.version, registered.first.alias)
    assert (2, CHALLENGER) == (registered.second.version, registered.second.alias)
    assert 1 == registered.registry.resolve(CHAMPION).version
    assert 2 == registered.registry.resolve(CHALLENGER).version


def test_embedded_default_lives_under_home(registered: Registered) -> None:
    """The SQLite file and the artifact folder are created inside FRAUDOPS_HOME."""
    home = registered.settings.home
    experiment = registered.registry.client.get_experiment_by_name("fraudops")

    assert (home / "mlflow.db").is_file()
    assert experiment is not None
    assert registered.settings.resolved_artifact_root == experiment.artifact_location
    assert any((home / "mlartifacts").rglob("bundle.pkl"))


def test_loaded_champion_scores_like_the_original(trained: Trained, registered: Registered) -> None:
    """The champion read back scores the sample exactly as the bundle that was registered."""
    loaded = registered.registry.load(CHAMPION)
    frame = trained.frame.head(SCORED_ROWS)

    np.testing.assert_array_equal(trained.first.score_frame(frame), loaded.score_frame(frame))
    assert (trained.first.threshold, trained.first.spec) == (loaded.threshold, loaded.spec)
    assert 0.3 == registered.registry.load(CHALLENGER).threshold


def test_pyfunc_by_alias_scores_raw_transactions(trained: Trained, mlflow_pointed_at: str) -> None:
    """models:/fraud-detector@champion scores raw text rows as the bundle scores loaded rows."""
    raw = trained.raw.head(SCORED_ROWS)
    model = mlflow.pyfunc.load_model("models:/fraud-detector@champion")

    scored = model.predict(raw)

    expected = trained.first.score_frame(clean_rows(raw))
    assert ["fraud_probability", "decision"] == list(scored.columns)
    np.testing.assert_array_equal(expected, scored["fraud_probability"].to_numpy())
    np.testing.assert_array_equal((expected >= 0.5).astype(np.int64), scored["decision"].to_numpy())


def test_pyfunc_takes_numbers_as_numbers(trained: Trained, registered: Registered) -> None:
    """cc_num, amounts and times as numbers (the way a pandas user builds rows) score the same."""
    raw = trained.raw.head(SCORED_ROWS).drop(columns=["trans_date_trans_time", "is_fraud"])
    typed = raw.astype({"cc_num": "int64", "unix_time": "int64", "city_pop": "int64"})
    typed = typed.astype(
        dict.fromkeys(("amt", "lat", "long", "merch_lat", "merch_long"), "float64")
    )
    model = registered.registry.load_pyfunc(CHALLENGER)

    from_text = model.predict(raw)
    from_numbers = model.predict(typed)

    pd.testing.assert_frame_equal(from_text, from_numbers)


def test_invalid_raw_row_refuses_the_batch(trained: Trained, registered: Registered) -> None:
    """A negative amount in one row refuses every row, naming the column and the problem."""
    raw = trained.raw.head(10).copy()
    raw.loc[3, "amt"] = "-5.00"
    model = registered.registry.load_pyfunc(CHAMPION)

    with pytest.raises(ValueError, match=r"amt: negative amount \[1 row\]"):
        model.predict(raw)
    with pytest.raises(ValueError, match="amt: negative amount"):
        score_transactions(trained.first, raw)


def test_stored_input_example_is_raw_and_scores(registered: Registered) -> None:
    """Each version's input example: five raw rows without label or descriptive columns."""
    for alias in (CHAMPION, CHALLENGER):
        model = registered.registry.load_pyfunc(alias)
        example = model.input_example
        assert isinstance(example, pd.DataFrame)
        assert {"trans_num", "cc_num", "amt", "trans_date_trans_time"} <= set(example.columns)
        assert not {"is_fraud", "first", "last", "street", "event_time"} & set(example.columns)
        assert 5 == len(model.predict(example))


def test_missing_required_column_is_refused(trained: Trained, registered: Registered) -> None:
    """Rows without an amount column are refused by validation, naming the column."""
    raw = trained.raw.head(10).drop(columns=["amt"])
    model = registered.registry.load_pyfunc(CHAMPION)

    with pytest.raises(ValueError, match="amt: required column missing"):
        model.predict(raw)


def test_run_records_lineage_params_metrics_and_artifacts(
    trained: Trained, registered: Registered
) -> None:
    """The run carries the commit, fingerprint, profile, parameters, metrics and files."""
    uri = registered.settings.resolved_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(registered.first.run_id)
    version = client.get_model_version("fraud-detector", "1")
    files = {
        a.path
        for folder in ("", "evaluation", "evaluation/plots")
        for a in client.list_artifacts(run.info.run_id, folder or None)
    }
    lineage = {
        "git_commit": git_revision().commit,
        "dataset_fingerprint": dataset_fingerprint(trained.frame),
        "data_profile": "sparkov",
        "model_type": "xgboost",
        "threshold": "0.5",
        "label_delay_days": "7",
        "training.train_start": "2019-01-01T00:00:00",
    }

    assert lineage.items() <= run.data.tags.items()
    assert lineage.items() <= version.tags.items()
    assert {
        "max_depth": "3",
        "model_type": "xgboost",
        "threshold": "0.5",
        "label_delay_ms": str(7 * MS_PER_DAY),
        "training.train_end": "2019-10-01T00:00:00",
    }.items() <= run.data.params.items()
    assert {
        "validation_average_precision": 0.75,
        "validation_f1": 0.5,
        "test_recall": 0.6,
    } == run.data.metrics
    assert {
        "data_profile.json",
        "features.json",
        "evaluation/report.md",
        "evaluation/plots/pr_curve.png",
    } <= files
    assert "FINISHED" == run.info.status
    assert registered.first.run_id == version.run_id


def test_versions_list_newest_first_with_aliases_and_metrics(registered: Registered) -> None:
    """versions() gives 2 then 1, each with its alias and its run's metrics."""
    versions = registered.registry.versions()

    assert [(2, (CHALLENGER,)), (1, (CHAMPION,))] == [(v.version, v.aliases) for v in versions]
    assert 0.6 == versions[1].metrics["test_recall"]
    assert "sparkov" == versions[0].tags["data_profile"]


def test_third_version_takes_challenger_and_promotion_moves_champion(
    trained: Trained, registered: Registered
) -> None:
    """In another registered model: v3 becomes challenger; set_alias promotes, delete unsets."""
    settings = registered.settings.model_copy(update={"model_name": "fraud-detector-promotion"})
    registry = MlflowRegistry(settings)
    for bundle in (trained.first, trained.second, trained.first):
        done = registry.log_training(
            bundle, input_example=trained.frame.head(3), dataset_fingerprint="f"
        )

    assert (3, CHALLENGER) == (done.version, done.alias)
    registry.set_alias(3, CHAMPION)
    registry.delete_alias(CHALLENGER)
    assert [(3, (CHAMPION,)), (2, ()), (1, ())] == [
        (v.version, v.aliases) for v in registry.versions()
    ]
    with pytest.raises(ModelNotFoundError, match="challenger"):
        registry.resolve(CHALLENGER)
    with pytest.raises(ModelNotFoundError, match="version 9"):
        registry.load_version(9)


def test_a_version_is_loaded_once_and_a_moved_alias_loads_its_new_version(
    trained: Trained, registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a version again (from any registry object) reuses its bundle; aliases still move."""
    settings = registered.settings.model_copy(update={"model_name": "fraud-detector-cached"})
    registry = MlflowRegistry(settings)
    for bundle in (trained.first, trained.second):
        registry.log_training(bundle, input_example=trained.frame.head(3), dataset_fingerprint="f")
    loads: list[int] = []
    original = MlflowRegistry.load_pyfunc_version

    def counting(self: MlflowRegistry, version: int) -> PyFuncModel:
        loads.append(version)
        return original(self, version)

    monkeypatch.setattr(MlflowRegistry, "load_pyfunc_version", counting)

    first = registry.load(CHAMPION)
    again = MlflowRegistry(settings).load_version(1)
    registry.set_alias(2, CHAMPION)
    moved = registry.load(CHAMPION)

    assert again is first
    assert (0.5, 0.3) == (first.threshold, moved.threshold)
    assert [1, 2] == loads
    with pytest.raises(ModelNotFoundError, match="version 9"):
        registry.load_version(9)


def test_the_bundle_cache_forgets_the_least_recently_used() -> None:
    """Beyond its size the cache drops the bundle used longest ago, not the one just read."""
    cache = _BundleCache(2)
    bundles = [cast("ModelBundle", object()) for _ in range(3)]
    cache.put(("a",), bundles[0])
    cache.put(("b",), bundles[1])
    assert cache.get(("a",)) is bundles[0]
    cache.put(("c",), bundles[2])

    assert [bundles[0], None, bundles[2]] == [cache.get((k,)) for k in ("a", "b", "c")]


def test_unknown_model_has_no_champion(registered: Registered) -> None:
    """A model name never registered answers ModelNotFoundError and an empty version list."""
    settings = registered.settings.model_copy(update={"model_name": "never-registered"})
    registry = MlflowRegistry(settings)

    assert [] == registry.versions()
    with pytest.raises(ModelNotFoundError, match="never-registered"):
        registry.load()


class Unpicklable:
    """An estimator holding a lambda, which pickle cannot save."""

    def __init__(self) -> None:
        self.predict_proba = lambda features: np.zeros((len(features), 2))


def test_failed_logging_marks_the_run_failed_and_registers_nothing(
    trained: Trained, registered: Registered
) -> None:
    """A bundle that cannot be saved leaves a FAILED run and no new version."""
    settings = registered.settings.model_copy(update={"model_name": "fraud-detector-failing"})
    registry = MlflowRegistry(settings)
    bundle = ModelBundle(
        spec=trained.first.spec, estimator=Unpicklable(), threshold=0.5, model_type="broken"
    )

    with pytest.raises(AttributeError, match="pickle"):
        registry.log_training(bundle, input_example=trained.raw.head(3), dataset_fingerprint="f")

    experiment = registry.client.get_experiment_by_name("fraudops")
    assert experiment is not None
    runs = registry.client.search_runs(
        [experiment.experiment_id], filter_string="tags.model_type = 'broken'"
    )
    assert ["FAILED"] == [run.info.status for run in runs]
    assert [] == registry.versions()


def test_missing_artifact_file_is_refused_before_any_run(
    trained: Trained, registered: Registered, tmp_path: Path
) -> None:
    """An artifact path that is not a file is an error, and no run is started for it."""
    settings = registered.settings.model_copy(update={"model_name": "fraud-detector-no-file"})
    registry = MlflowRegistry(settings)
    experiment = registry.client.get_experiment_by_name("fraudops")
    assert experiment is not None
    runs_before = len(registry.client.search_runs([experiment.experiment_id]))

    with pytest.raises(FileNotFoundError, match=r"plot\.png"):
        registry.log_training(
            trained.first,
            input_example=trained.raw.head(3),
            dataset_fingerprint="f",
            artifacts={"plot": tmp_path / "plot.png"},
        )

    assert runs_before == len(registry.client.search_runs([experiment.experiment_id]))
