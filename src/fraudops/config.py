"""Settings for every fraudops component, read from FRAUDOPS_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
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
    redis_url: str | None = Field(
        default=None,
        description="Redis holding the online feature state shared by service replicas "
        "(e.g. redis://127.0.0.1:6379/0); without it the state lives in the process and is "
        "rebuilt from the warehouse on start.",
    )
    redis_prefix: str = Field(default="fraudops", description="Prefix of every Redis key.")
    journal_drain: Literal["process", "thread"] = Field(
        default="process",
        description="What stores the scoring journal in the warehouse: a process of its own "
        "(the serving process keeps its CPU for scoring) or a thread of the serving process.",
    )
    api_tokens: str = Field(
        default="", description="Comma-separated bearer tokens allowed to score and label."
    )
    admin_tokens: str = Field(
        default="",
        description="Comma-separated bearer tokens allowed to administer (reload models); "
        "they may also score.",
    )
    metrics_public: bool = Field(
        default=True, description="Serve /metrics without a token (scrapers inside the network)."
    )
    pii_tokens: str = Field(
        default="",
        description="Comma-separated bearer tokens allowed to score, label and read personal "
        "data (card numbers, names, birth dates) of stored transactions; admins may too.",
    )
    card_hash_key: SecretStr | None = Field(
        default=None,
        description="Key (64 hex digits) of the keyed hash that stands for card numbers in "
        "the warehouse and the feature state; every replica must share it. Defaults to a key "
        "made once in HOME/secrets/card-hash.key.",
    )
    raw_record_key: SecretStr | None = Field(
        default=None,
        description="Fernet key: when set, the raw record of each transaction (with names, "
        "street and card number) is stored encrypted with it, for roles that may read "
        "personal data; unset, it is not stored at all.",
    )
    max_event_ahead_seconds: float = Field(
        default=86_400.0,
        ge=0.0,
        description="Transactions dated more than this ahead of the service's clock are "
        "refused (422); a day by default, so that local times east of UTC pass.",
    )
    late_event_seconds: float = Field(
        default=3_600.0,
        gt=0.0,
        description="A transaction this much older than the latest event times seen counts "
        "as late (accepted, and counted on /metrics).",
    )
    review_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Fraud probability from which a transaction goes to review; "
        "defaults to half the decline threshold.",
    )
    decline_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Fraud probability from which a transaction is declined; "
        "defaults to the threshold chosen when the model was trained.",
    )
    review_capacity: float | None = Field(
        default=None,
        gt=0.0,
        description="Alerts (reviews and declines) per day the analysts can review: training "
        "and retraining set the review threshold so that the validation days give this many, "
        "and monitoring checks the served alerts per day against it. Unset: review at half "
        "the decline threshold.",
    )
    batch_limit: int = Field(
        default=1000, ge=1, le=100_000, description="Most transactions in one batch request."
    )
    reasons: int = Field(default=3, ge=0, le=20, description="Reasons returned with a score.")
    model_watch_seconds: float = Field(
        default=0.0,
        ge=0.0,
        description="Poll the registry aliases this often and hot-swap on a change (0: off).",
    )
    shadow: bool = Field(
        default=True, description="Score the challenger, if any, in shadow and store its scores."
    )
    service_url: str | None = Field(
        default=None,
        description="Base URL of the running scoring service (e.g. http://127.0.0.1:8000): "
        "after a promotion or rollback it is told to reload (with the first admin token).",
    )
    policy_file: Path | None = Field(
        default=None,
        description="TOML file of the monitoring and promotion policy; defaults to "
        "HOME/policy.toml when that exists, else the built-in defaults.",
    )
    label_maturity_quantile: float = Field(
        default=0.95,
        gt=0.0,
        lt=1.0,
        description="Monitoring and retraining count an unlabelled transaction as legitimate "
        "once it is old enough that this share of fraud labels (as observed in the "
        "warehouse) would have arrived; never younger than the policy's label delay.",
    )

    console_url: str | None = Field(
        default=None,
        description="Base URL of the analyst console (e.g. http://127.0.0.1:8050): alerts "
        "link to its pages.",
    )
    analyst_tokens: SecretStr | None = Field(
        default=None,
        description="Comma-separated tokens of console analysts, each `name=token` (the name "
        "goes to the audit trail) or a bare token (named analyst-N by its position); admin "
        "tokens (FRAUDOPS_ADMIN_TOKENS) open the console as administrators.",
    )
    console_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the console's session cookies; unset, a random key of the "
        "process (sessions end when the console restarts). Shared by console replicas.",
    )
    console_session_hours: float = Field(
        default=8.0, gt=0.0, le=24.0 * 30, description="How long a console session lasts."
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="SMTP server that sends alert e-mails, as smtp://[user:password@]host:port "
        "(e.g. smtp://127.0.0.1:1025).",
    )
    alert_email_from: str = Field(
        default="fraudops@localhost", description="Sender address of alert e-mails."
    )
    alert_email_to: str = Field(
        default="", description="Comma-separated recipients of alert e-mails."
    )
    alert_webhook_urls: SecretStr | None = Field(
        default=None,
        description="Comma-separated webhook URLs (e.g. Slack incoming webhooks) that get each "
        'alert as JSON: {"text": ..., "event": {...}}.',
    )
    alert_decline_min_probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Only declines with at least this fraud probability raise an alert.",
    )
    alert_decline_min_amount: float | None = Field(
        default=None, ge=0.0, description="Only declines of at least this amount raise an alert."
    )
    alert_rate_limit: int = Field(
        default=10,
        ge=1,
        description="Most alerts of one kind sent one by one per rate window; the rest of a "
        "burst goes out as one digest.",
    )
    alert_rate_window_seconds: float = Field(
        default=300.0, gt=0.0, description="The window of the alert rate limit."
    )
    alert_send_interval_seconds: float = Field(
        default=5.0, gt=0.0, description="How often the alert sender looks at the outbox."
    )
    alert_surge_ratio: float = Field(
        default=3.0,
        gt=0.0,
        description="Alert when the reviews and declines of the last full hour (event time) "
        "are more than this many times those of the same hour a week earlier.",
    )
    alert_surge_min_count: int = Field(
        default=20, ge=1, description="Fewest reviews and declines in an hour that make a surge."
    )
    alert_ingest_lag_seconds: float | None = Field(
        default=None,
        gt=0.0,
        description="Alert when nothing was scored for longer than this (wall clock); unset: off.",
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Self:
        if (
            self.review_threshold is not None
            and self.decline_threshold is not None
            and self.review_threshold > self.decline_threshold
        ):
            msg = "review_threshold must not exceed decline_threshold"
            raise ValueError(msg)
        return self

    @property
    def scoring_tokens(self) -> tuple[str, ...]:
        """Bearer tokens of scoring clients."""
        return _token_list(self.api_tokens)

    @property
    def admin_token_list(self) -> tuple[str, ...]:
        """Bearer tokens of administrators."""
        return _token_list(self.admin_tokens)

    @property
    def pii_token_list(self) -> tuple[str, ...]:
        """Bearer tokens of clients that may also read personal data."""
        return _token_list(self.pii_tokens)

    @property
    def alert_email_recipients(self) -> tuple[str, ...]:
        """Recipients of alert e-mails."""
        return _token_list(self.alert_email_to)

    @property
    def alert_webhook_list(self) -> tuple[str, ...]:
        """Webhook URLs that get alerts."""
        urls = "" if self.alert_webhook_urls is None else self.alert_webhook_urls.get_secret_value()
        return _token_list(urls)

    @property
    def alerts_enabled(self) -> bool:
        """Whether any alert channel is configured: only then are alerts put in the outbox."""
        return bool(
            (self.smtp_url is not None and self.alert_email_recipients) or self.alert_webhook_list
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


def _token_list(text: str) -> tuple[str, ...]:
    """Non-empty, stripped, comma-separated tokens."""
    return tuple(token.strip() for token in text.split(",") if token.strip())


def setting_problems(error: ValidationError) -> list[str]:
    """Each problem of settings that failed validation, naming its environment variable
    (never its value: it may be a key or a token)."""
    problems = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = f"FRAUDOPS_{field.upper()}" if field else "the settings"
        problems.append(f"{name}: {problem['msg']}")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
