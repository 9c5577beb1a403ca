"""Settings for every fraudops component, read from FRAUDOPS_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One settings object, built once by get_settings() and passed to whatever needs it."""

    model_config = SettingsConfigDict(env_prefix="FRAUDOPS_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path(".fraudops"),
        description="Folder that holds everything the embedded default writes.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    profiles_dir: Path | None = Field(
        default=None,
        description="Folder of user dataset profiles (*.toml); defaults to HOME/profiles.",
    )
    seed: int = 42
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry URI; defaults to SQLite at HOME/mlflow.db.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where new MLflow experiments store artifacts; defaults to HOME/mlartifacts "
        "(an MLflow server chooses its own unless this is set).",
    )
    experiment: str = Field(default="fraudops", description="MLflow experiment of training runs.")
    model_name: str = Field(default="fraud-detector", description="Registered model name.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the warehouse (e.g. postgresql+psycopg://...); "
        "defaults to SQLite at HOME/warehouse.db.",
    )

    @property
    def user_profiles_dir(self) -> Path:
        """Where user-defined dataset profiles are looked up by name."""
        return self.profiles_dir if self.profiles_dir is not None else self.home / "profiles"

    @property
    def resolved_tracking_uri(self) -> str:
        """The MLflow URI in use: the setting, or the embedded SQLite file under home."""
        if self.tracking_uri is not None:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve().as_posix()}"

    @property
    def resolved_database_url(self) -> str:
        """The warehouse URL in use: the setting, or the embedded SQLite file under home."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{(self.home / 'warehouse.db').resolve().as_posix()}"

    @property
    def resolved_artifact_root(self) -> str:
        """Artifact location for new experiments: the setting, or HOME/mlartifacts as a URI."""
        if self.artifact_root is not None:
            return self.artifact_root
        return (self.home / "mlartifacts").resolve().as_uri()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
