"""MLflow tracking and model registry through an explicit client: no global MLflow state.

Each training becomes one run (parameters, metrics, lineage tags, plots and reports), one
logged pyfunc model and one version of the registered model, aliased champion if the model
has none yet and challenger otherwise. The same code talks to the embedded default (SQLite
and a local artifact folder under FRAUDOPS_HOME) and to an MLflow server.
"""

import functools
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TypeVar

import mlflow.artifacts
import mlflow.pyfunc
import pandas as pd
import structlog
from mlflow import MlflowClient
from mlflow.entities import (
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunStatus,
)
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.pyfunc import PyFuncModel
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from fraudops.config import Settings
from fraudops.features.spec import MS_PER_DAY
from fraudops.registry.base import (
    CHAMPION,
    ModelNotFoundError,
    ModelVersionInfo,
    RegisteredVersion,
    alias_for_new_version,
)
from fraudops.registry.lineage import git_revision
from fraudops.registry.pyfunc import (
    BUNDLE_ARTIFACT,
    BUNDLE_FILE,
    FraudDetectorPyfunc,
    environment_mismatches,
    model_signature,
    pip_requirements,
    raw_input_example,
    write_bundle,
)
from fraudops.training.bundle import ModelBundle

log = structlog.get_logger(__name__)

MODEL_ARTIFACT = "model"
EVALUATION_ARTIFACTS = "evaluation"
# The server's limits per log_batch request.
_MAX_PARAMS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_REMOTE_SCHEMES = ("http://", "https://", "databricks")
# Bundles loaded in this process, by registry, model, version and the version's source: a
# version's artifacts never change, so the scheduled jobs, which load the champion and the
# challenger several times a day, read each one once. Aliases are still resolved each time.
BUNDLE_CACHE_SIZE = 4  # champion, challenger and their successors; ~10 MB each

T = TypeVar("T")


class _BundleCache:
    """A small thread-safe least-recently-used map of loaded bundles."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._bundles: OrderedDict[tuple[str, ...], ModelBundle] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> ModelBundle | None:
        """The bundle kept under key, now the most recently used; None if not kept."""
        with self._lock:
            bundle = self._bundles.get(key)
            if bundle is not None:
                self._bundles.move_to_end(key)
            return bundle

    def put(self, key: tuple[str, ...], bundle: ModelBundle) -> None:
        """Keep a bundle, forgetting the least recently used beyond the size."""
        with self._lock:
            self._bundles[key] = bundle
            self._bundles.move_to_end(key)
            while len(self._bundles) > self.size:
                self._bundles.popitem(last=False)

    def clear(self) -> None:
        """Forget every bundle."""
        with self._lock:
            self._bundles.clear()


_loaded_bundles = _BundleCache(BUNDLE_CACHE_SIZE)


class MlflowRegistry:
    """The ModelRegistry on MLflow: runs in settings.experiment, versions of settings.model_name."""

    def __init__(self, settings: Settings) -> None:
        self.tracking_uri = settings.resolved_tracking_uri
        self.name = settings.model_name
        self.experiment = settings.experiment
        remote = self.tracking_uri.startswith(_REMOTE_SCHEMES)
        # A server decides where artifacts go unless settings name a place explicitly.
        self.artifact_location = (
            settings.resolved_artifact_root
            if settings.artifact_root is not None or not remote
            else None
        )
        if settings.tracking_uri is None:
            settings.home.mkdir(parents=True, exist_ok=True)

    @functools.cached_property
    def client(self) -> MlflowClient:
        """The MLflow client, made on first use: on a new SQLite store that creates its tables
        (seconds), which a server starting up does in the background, not before it answers."""
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def log_training(
        self,
        bundle: ModelBundle,
        *,
        input_example: pd.DataFrame,
        dataset_fingerprint: str,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,
        artifacts: Mapping[str, Path] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredVersion:
        """Record a training run and register its bundle as champion or challenger.

        Args:
            input_example: a few transactions (raw or as the readers load them).
            metrics: added to the bundle's own metrics, under the names given.
            params: added to the bundle's hyperparameters and training periods.
            artifacts: files (plots, reports) logged under `evaluation/`, keeping their
                relative layout so that reports still find their images.
        """
        lineage = _lineage_tags(bundle, dataset_fingerprint)
        all_params = _merge_params(bundle, lineage, params or {})
        all_tags = lineage | dict(tags or {})
        all_metrics = {**bundle.metrics, **(metrics or {})}
        files = list(_artifact_destinations(artifacts or {}))
        run = self.client.create_run(
            self._experiment_id(), tags=all_tags, run_name=f"{bundle.model_type}-training"
        )
        run_id = run.info.run_id
        try:
            self._log_run_data(run_id, params=all_params, metrics=all_metrics)
            self._log_files(run_id, bundle=bundle, files=files)
            model = self._log_model(run_id, bundle=bundle, input_example=input_example)
            version = self._register(run_id=run_id, model=model, tags=all_tags)
            alias = self._alias_new_version(version)
        except BaseException:
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        log.info(
            "model registered",
            model=self.name,
            model_version=version,
            alias=alias,
            run_id=run_id,
            tracking_uri=self.tracking_uri,
        )
        return RegisteredVersion(name=self.name, version=version, run_id=run_id, alias=alias)

    def load(self, alias: str = CHAMPION) -> ModelBundle:
        """The bundle the alias points at."""
        return self.load_version(self.resolve(alias).version)

    def load_version(self, version: int) -> ModelBundle:
        """The bundle of one version number, read back through its pyfunc model.

        Loaded once per process (see BUNDLE_CACHE_SIZE); the version must still exist.
        """
        found = self._version(version)
        key = (self.tracking_uri, self.name, str(version), found.run_id or "", found.source or "")
        cached = _loaded_bundles.get(key)
        if cached is not None:
            return cached
        model = self.load_pyfunc_version(version)
        python_model = model.unwrap_python_model()  # type: ignore[no-untyped-call]
        if not isinstance(python_model, FraudDetectorPyfunc):
            msg = f"{self.name} version {version} is not a fraudops model"
            raise TypeError(msg)
        _loaded_bundles.put(key, python_model.bundle)
        return python_model.bundle

    def load_pyfunc(self, alias: str = CHAMPION) -> PyFuncModel:
        """The pyfunc model the alias points at, scoring raw transactions."""
        return self.load_pyfunc_version(self.resolve(alias).version)

    def load_pyfunc_version(self, version: int) -> PyFuncModel:
        """The pyfunc model of one version number."""
        self._version(version)
        # Resolved here: MLflow resolves models:/ URIs through the global registry URI.
        location = self.client.get_model_version_download_uri(self.name, str(version))
        with tempfile.TemporaryDirectory(prefix="fraudops-model-") as folder:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location,
                dst_path=folder,
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
            )
            # MLflow's own check of the model's requirements reads the file list of every
            # installed distribution (about 1 s of CPU at each process's first load); the
            # requirements are pinned, so comparing their versions says the same.
            for mismatch in environment_mismatches(Path(local)):
                log.warning("model environment differs", model_version=version, mismatch=mismatch)
            model: PyFuncModel = mlflow.pyfunc.load_model(local, suppress_warnings=True)
        log.info("model loaded", model=self.name, model_version=version)
        return model

    def model_uri(self, alias: str = CHAMPION) -> str:
        """The URI mlflow.pyfunc.load_model takes for an alias of this model."""
        return f"models:/{self.name}@{alias}"

    def resolve(self, alias: str = CHAMPION) -> ModelVersionInfo:
        """The version the alias points at now."""
        aliases = self._aliases()
        if alias not in aliases:
            msg = f"model {self.name!r} has no version with alias {alias!r}"
            raise ModelNotFoundError(msg)
        return self._info(self._version(aliases[alias]), aliases)

    def versions(self) -> list[ModelVersionInfo]:
        """Every registered version, newest first."""
        aliases = self._aliases()
        infos: list[ModelVersionInfo] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{_quoted(self.name)}'",
                order_by=["version_number DESC"],
                page_token=token,
            )
            infos += [self._info(version, aliases) for version in page]
            token = page.token
            if not token:
                return infos

    def set_alias(self, version: int, alias: str) -> None:
        """Point an alias at a version (moving it from any other)."""
        self._version(version)
        self.client.set_registered_model_alias(self.name, alias, str(version))
        log.info("alias set", model=self.name, model_version=version, alias=alias)

    def delete_alias(self, alias: str) -> None:
        """Remove an alias from whichever version holds it."""
        if alias in self._aliases():
            self.client.delete_registered_model_alias(self.name, alias)
            log.info("alias deleted", model=self.name, alias=alias)

    def set_version_tags(self, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a version (a decision's verdict and evidence, for the registry UI)."""
        self._version(version)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def _experiment_id(self) -> str:
        """The experiment's id, creating it (with the artifact location) when missing."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        try:
            return self.client.create_experiment(
                self.experiment, artifact_location=self.artifact_location
            )
        except MlflowException as exc:
            # Another process created it in between.
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            again = self.client.get_experiment_by_name(self.experiment)
            if again is None:
                raise
            return str(again.experiment_id)

    def _log_run_data(
        self, run_id: str, *, params: Mapping[str, str], metrics: Mapping[str, float]
    ) -> None:
        """Parameters and metrics in batches the server accepts."""
        stamp = int(time.time() * 1000)
        for names in _chunks(params, _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=[Param(k, params[k]) for k in names])
        for names in _chunks(metrics, _MAX_METRICS_PER_BATCH):
            logged = [Metric(k, float(metrics[k]), stamp, 0) for k in names]
            self.client.log_batch(run_id, metrics=logged)

    def _log_files(
        self, run_id: str, *, bundle: ModelBundle, files: Iterable[tuple[Path, str]]
    ) -> None:
        """Evaluation files (path, run folder), and the data profile and feature list as JSON."""
        for path, folder in files:
            self.client.log_artifact(run_id, str(path), artifact_path=folder)
        self.client.log_dict(
            run_id, bundle.spec.profile.model_dump(mode="json"), "data_profile.json"
        )
        features = {
            "names": list(bundle.spec.names),
            "label_delay_ms": bundle.spec.label_delay_ms,
            "label_lag_ms": bundle.spec.label_lag_ms,
            "vocabularies": {k: list(v) for k, v in bundle.spec.vocabularies.items()},
        }
        self.client.log_dict(run_id, features, "features.json")

    def _log_model(
        self, run_id: str, *, bundle: ModelBundle, input_example: pd.DataFrame
    ) -> LoggedModel:
        """The bundle as a pyfunc LoggedModel, an output of the run."""
        experiment_id = self.client.get_run(run_id).info.experiment_id
        logged = self.client.create_logged_model(
            experiment_id,
            name=MODEL_ARTIFACT,
            source_run_id=run_id,
            params={"model_type": bundle.model_type, "threshold": str(bundle.threshold)},
            model_type=bundle.model_type,
        )
        example = raw_input_example(input_example, bundle.spec.profile)
        try:
            with tempfile.TemporaryDirectory(prefix="fraudops-model-") as folder:
                bundle_path = write_bundle(bundle, Path(folder) / BUNDLE_FILE)
                local = Path(folder) / MODEL_ARTIFACT
                mlflow.pyfunc.save_model(
                    path=str(local),
                    python_model=FraudDetectorPyfunc(),
                    artifacts={BUNDLE_ARTIFACT: str(bundle_path)},
                    signature=model_signature(bundle.spec.profile),
                    input_example=example,
                    pip_requirements=pip_requirements(bundle.estimator),
                    mlflow_model=Model(
                        artifact_path=logged.artifact_location,
                        run_id=run_id,
                        model_uuid=logged.model_id,
                        model_id=logged.model_id,
                    ),
                )
                self.client.log_model_artifacts(logged.model_id, str(local))
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)

    def _register(self, *, run_id: str, model: LoggedModel, tags: Mapping[str, str]) -> int:
        """A new version of the registered model (created on first use) from the logged model."""
        try:
            self.client.create_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        created = self.client.create_model_version(
            self.name,
            # The artifact location, not models:/<id>: MLflow's SQL registry store resolves
            # the latter through the global tracking URI instead of this client's.
            source=model.artifact_location,
            run_id=run_id,
            tags=dict(tags),
            model_id=model.model_id,
        )
        self.client.set_logged_model_tags(
            model.model_id,
            {MLFLOW_MODEL_VERSIONS: json.dumps([{"name": self.name, "version": created.version}])},
        )
        return int(created.version)

    def _alias_new_version(self, version: int) -> str:
        """Champion for the first version, challenger (moved here) for every later one."""
        alias = alias_for_new_version(self._aliases())
        self.client.set_registered_model_alias(self.name, alias, str(version))
        return alias

    def _version(self, version: int) -> ModelVersion:
        """One version, or ModelNotFoundError."""
        try:
            return self.client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            msg = f"model {self.name!r} has no version {version}"
            raise ModelNotFoundError(msg) from exc

    def _aliases(self) -> dict[str, int]:
        """Every alias of the registered model and the version it points at."""
        try:
            registered = self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            return {}
        return {alias: int(number) for alias, number in registered.aliases.items()}

    def _info(self, version: ModelVersion, aliases: Mapping[str, int]) -> ModelVersionInfo:
        """A registry version with its aliases and its run's metrics."""
        number = int(version.version)
        run_id = version.run_id or None
        metrics = dict(self.client.get_run(run_id).data.metrics) if run_id else {}
        return ModelVersionInfo(
            name=self.name,
            version=number,
            run_id=run_id,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
            created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
            metrics=metrics,
            tags=dict(version.tags),
        )


def _lineage_tags(bundle: ModelBundle, fingerprint: str) -> dict[str, str]:
    """Where the model came from, on the run and on the version alike."""
    revision = git_revision()
    tags = {
        "git_commit": revision.commit,
        "git_dirty": "unknown" if revision.dirty is None else str(revision.dirty).lower(),
        "data_profile": bundle.spec.profile.name,
        "data_profile_digest": bundle.spec.profile.digest,
        "dataset_fingerprint": fingerprint,
        "model_type": bundle.model_type,
        "threshold": repr(bundle.threshold),
        "label_delay_days": f"{bundle.spec.label_delay_ms / MS_PER_DAY:g}",
    }
    return tags | {f"training.{key}": value for key, value in bundle.training.items()}


def _merge_params(
    bundle: ModelBundle, lineage: Mapping[str, str], extra: Mapping[str, object]
) -> dict[str, str]:
    """Hyperparameters, training periods, lineage and extras as text; a clash is an error."""
    merged: dict[str, str] = {}
    sources: list[Mapping[str, object]] = [
        bundle.params,
        {f"training.{k}": v for k, v in bundle.training.items()},
        {k: v for k, v in lineage.items() if not k.startswith("training.")},
        {
            "label_delay_ms": bundle.spec.label_delay_ms,
            "label_lag_ms": bundle.spec.label_lag_ms,
            "feature_count": len(bundle.spec.names),
        },
        extra,
    ]
    for source in sources:
        for key, value in source.items():
            text = str(value)
            if merged.get(key, text) != text:
                msg = f"parameter {key!r} given twice: {merged[key]!r} and {text!r}"
                raise ValueError(msg)
            merged[key] = text
    return merged


def _artifact_destinations(artifacts: Mapping[str, Path]) -> Iterator[tuple[Path, str]]:
    """Each file with its run folder under evaluation/, relative to the files' common folder."""
    paths = [path.resolve() for path in artifacts.values()]
    for path in paths:
        if not path.is_file():
            msg = f"artifact {path} is not a file"
            raise FileNotFoundError(msg)
    if not paths:
        return
    common = Path(os.path.commonpath([path.parent for path in paths]))
    for path in paths:
        relative = path.parent.relative_to(common).as_posix()
        yield (
            path,
            EVALUATION_ARTIFACTS if relative == "." else f"{EVALUATION_ARTIFACTS}/{relative}",
        )


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most size items."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _quoted(text: str) -> str:
    """A value for an MLflow filter string in single quotes."""
    return text.replace("'", "\\'")
