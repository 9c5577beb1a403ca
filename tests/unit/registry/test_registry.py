"""Registry rules without MLflow: aliases of new versions, the in-memory registry, lineage."""

import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.features.spec import MS_PER_DAY, FeatureSpec
from fraudops.registry import (
    CHALLENGER,
    CHAMPION,
    InMemoryRegistry,
    ModelNotFoundError,
    ModelRegistry,
    alias_for_new_version,
    dataset_fingerprint,
    git_revision,
)
from fraudops.registry.pyfunc import environment_mismatches, pip_requirements
from fraudops.training.bundle import ModelBundle

REPO = Path(__file__).resolve().parents[2]


class ConstantClassifier:
    """Predicts the same fraud probability for every row."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # noqa: N803
        """Two columns: not fraud, fraud."""
        fraud = np.full(len(X), self.probability)
        return np.column_stack([1 - fraud, fraud])


def constant_bundle(probability: float) -> ModelBundle:
    """A bundle whose model answers one probability."""
    return ModelBundle(
        spec=FeatureSpec(profile=SPARKOV, label_delay_ms=7 * MS_PER_DAY),
        estimator=ConstantClassifier(probability),
        threshold=0.5,
        model_type="constant",
        metrics={"validation_f1": probability},
    )


def register(registry: ModelRegistry, bundle: ModelBundle) -> tuple[int, str]:
    """Register a bundle; its version number and alias."""
    done = registry.log_training(
        bundle, input_example=pd.DataFrame(), dataset_fingerprint="fingerprint"
    )
    return done.version, done.alias


def test_new_version_is_champion_only_when_there_is_none() -> None:
    """No champion yet: champion; a champion already (with or without challenger): challenger."""
    assert CHAMPION == alias_for_new_version({})
    assert CHAMPION == alias_for_new_version({CHALLENGER: 1})
    assert CHALLENGER == alias_for_new_version({CHAMPION: 1})
    assert CHALLENGER == alias_for_new_version({CHAMPION: 1, CHALLENGER: 2})


def test_in_memory_registry_aliases_versions_like_mlflow() -> None:
    """Versions 1, 2, 3: champion, challenger, then challenger moves to the newest."""
    registry = InMemoryRegistry()

    registered = [register(registry, constant_bundle(p)) for p in (0.1, 0.2, 0.3)]

    assert [(1, CHAMPION), (2, CHALLENGER), (3, CHALLENGER)] == registered
    assert 1 == registry.resolve(CHAMPION).version
    assert 3 == registry.resolve(CHALLENGER).version
    assert [(3, (CHALLENGER,)), (2, ()), (1, (CHAMPION,))] == [
        (v.version, v.aliases) for v in registry.versions()
    ]


def test_in_memory_registry_loads_and_promotes() -> None:
    """load follows the alias; set_alias moves it; a missing alias is a ModelNotFoundError."""
    registry = InMemoryRegistry()
    first, second = constant_bundle(0.1), constant_bundle(0.9)
    register(registry, first)
    register(registry, second)

    assert first is registry.load()
    registry.set_alias(2, CHAMPION)
    registry.delete_alias(CHALLENGER)

    assert second is registry.load(CHAMPION)
    assert {"validation_f1": 0.9} == registry.resolve().metrics
    with pytest.raises(ModelNotFoundError, match="challenger"):
        registry.load(CHALLENGER)
    with pytest.raises(ModelNotFoundError, match="version 7"):
        registry.set_alias(7, CHAMPION)


def test_dataset_fingerprint_is_stable_and_sensitive() -> None:
    """Equal frames (any index) share a fingerprint; one changed value or name changes it."""
    frame = pd.DataFrame({"amt": [4.97, 107.23, 220.11], "cc_num": ["1", "2", "3"]})
    same = frame.copy().set_axis([10, 11, 12])
    changed = frame.copy()
    changed.loc[1, "amt"] = 107.24
    renamed = frame.rename(columns={"amt": "amount"})

    fingerprint = dataset_fingerprint(frame)

    assert 64 == len(fingerprint)
    assert fingerprint == dataset_fingerprint(same)
    assert fingerprint != dataset_fingerprint(changed)
    assert fingerprint != dataset_fingerprint(renamed)
    assert fingerprint != dataset_fingerprint(frame.iloc[::-1])


def test_git_revision_names_the_checked_out_commit(tmp_path: Path) -> None:
    """Inside the repository: HEAD's commit; in a folder outside any repository: unknown."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert head == git_revision(REPO).commit
    assert ("unknown", None) == (git_revision(tmp_path).commit, git_revision(tmp_path).dirty)


def test_tracking_defaults_live_under_home(tmp_path: Path) -> None:
    """Without settings: SQLite at HOME/mlflow.db and artifacts in HOME/mlartifacts."""
    settings = Settings(_env_file=None, home=tmp_path)

    assert f"sqlite:///{tmp_path.resolve()}/mlflow.db" == settings.resolved_tracking_uri
    assert (tmp_path.resolve() / "mlartifacts").as_uri() == settings.resolved_artifact_root
    assert ("fraudops", "fraud-detector") == (settings.experiment, settings.model_name)


def test_tracking_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """FRAUDOPS_TRACKING_URI and FRAUDOPS_ARTIFACT_ROOT are used as given."""
    monkeypatch.setenv("FRAUDOPS_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("FRAUDOPS_ARTIFACT_ROOT", "s3://models/fraudops")

    settings = Settings(_env_file=None)

    assert "http://mlflow.internal:5000" == settings.resolved_tracking_uri
    assert "s3://models/fraudops" == settings.resolved_artifact_root


def test_the_input_example_kept_with_a_model_is_made_up(sample_frame: pd.DataFrame) -> None:
    """No card number, id, merchant, birth date or home of a real transaction goes to the
    registry; the example still reads as a valid Sparkov file."""
    from fraudops.data.validation import check_frame  # noqa: PLC0415
    from fraudops.registry.pyfunc import raw_input_example  # noqa: PLC0415

    example = raw_input_example(sample_frame, SPARKOV)
    real = sample_frame.head(5)
    assert 5 == len(example)
    for column in ("cc_num", "trans_num", "merchant", "dob", "lat", "long", "amt"):
        assert not set(example[column].astype(str)) & set(real[column].astype(str)), column
    assert () == check_frame(example, SPARKOV, require_label=False).issues


def test_pip_requirements_pin_the_running_libraries_and_the_estimator_s() -> None:
    """Each required library pinned at its installed version, sklearn under its distribution."""
    requirements = pip_requirements(np.zeros(1))

    assert f"numpy=={version('numpy')}" in requirements
    assert f"scikit-learn=={version('scikit-learn')}" in requirements
    assert requirements == sorted(requirements) == pip_requirements(np.zeros(1))


def test_environment_mismatches_name_each_unmet_requirement_and_another_python(
    tmp_path: Path,
) -> None:
    """What MLflow's own check warns of, read from the model folder without its cost."""
    (tmp_path / "requirements.txt").write_text(
        f"pandas=={version('pandas')}\nnumpy==0.0.1\nno-such-package-fraudops==1.0\n-r extra.txt\n"
    )
    (tmp_path / "MLmodel").write_text("flavors:\n  python_function:\n    python_version: 2.7.18\n")

    assert environment_mismatches(tmp_path) == [
        f"numpy==0.0.1 required, {version('numpy')} installed",
        "no-such-package-fraudops==1.0 required, not installed",
        f"Python 2.7.18 wrote it, {platform.python_version()} runs it",
    ]
    (tmp_path / "requirements.txt").write_text(pip_requirements(np.zeros(1))[0] + "\n")
    (tmp_path / "MLmodel").write_text(
        f"flavors:\n  python_function:\n    python_version: {platform.python_version()}\n"
    )
    assert environment_mismatches(tmp_path) == []
