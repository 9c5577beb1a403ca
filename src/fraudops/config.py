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

    @property
    def user_profiles_dir(self) -> Path:
        """Where user-defined dataset profiles are looked up by name."""
        return self.profiles_dir if self.profiles_dir is not None else self.home / "profiles"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
