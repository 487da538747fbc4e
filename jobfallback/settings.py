"""Every environment variable jobfallback reads, validated once.

Flags override the environment: the CLI passes them as keyword arguments to `load_settings`.
Invalid values become one UsageError line naming the variable and what is allowed (exit 2).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AliasGenerator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobfallback.errors import UsageError

_ALLOWED = {
    "TF_SERVICE_API_TOKEN": "a TrueFoundry API token",
    "TF_USER_API_TOKEN": "a TrueFoundry API token",
    "JOB_FALLBACK_ENABLED": "true or false",
    "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "a whole number of minutes from 1 to 525600",
    "TFY_HOST": "an http(s) URL such as https://acme.truefoundry.cloud",
    "DATABASE_URL": "a URL such as postgresql://user:password@host:5432/dbname",
    "JOB_FALLBACK_CONCURRENCY": "a whole number from 1 to 256",
    "JOB_FALLBACK_HTTP_TIMEOUT_SECONDS": "a number of seconds above 0 and at most 600",
    "JOB_FALLBACK_SETTLE_SECONDS": "a whole number of seconds from 0 to 86400",
    "JOB_FALLBACK_MAX_ATTEMPTS": "a whole number from 1 to 100",
    "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "a whole number of seconds from 0 to 86400",
}


def _env_or_field_name(name: str) -> AliasChoices:
    # Each setting is read from its upper-case environment variable, or given by field name
    # (how the CLI passes its flags).
    return AliasChoices(name.upper(), name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=True,
        extra="ignore",
        alias_generator=AliasGenerator(validation_alias=_env_or_field_name),
    )

    tf_service_api_token: SecretStr | None = None
    tf_user_api_token: SecretStr | None = None
    job_fallback_enabled: bool = False
    job_fallback_stuck_threshold_minutes: int = Field(default=60, ge=1, le=525600)
    tfy_host: str | None = None
    database_url: SecretStr | None = None
    job_fallback_concurrency: int = Field(default=16, ge=1, le=256)
    job_fallback_http_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long a trigger whose answer was lost may take to show in its version's listing.
    job_fallback_settle_seconds: int = Field(default=600, ge=0, le=86400)
    job_fallback_max_attempts: int = Field(default=8, ge=1, le=100)
    # The wait after a move's first failed attempt; it doubles per attempt, up to 24 times it.
    job_fallback_retry_backoff_seconds: int = Field(default=300, ge=0, le=86400)

    @field_validator("tf_service_api_token", "tf_user_api_token", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tfy_host", mode="before")
    @classmethod
    def _check_host(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        parts = urlsplit(str(value).strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("not an http(s) URL")
        return str(value).strip().rstrip("/")

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> Any:
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        parts = urlsplit(raw)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("not a postgresql:// URL")
        try:
            parts.port  # noqa: B018  (raises on a non-numeric port)
        except ValueError as exc:
            raise ValueError("bad port") from exc
        return raw

    @property
    def service_token(self) -> str | None:
        return self.tf_service_api_token.get_secret_value() if self.tf_service_api_token else None

    @property
    def user_token(self) -> str | None:
        """Interactive commands act as the user when a user token is set."""
        token = self.tf_user_api_token or self.tf_service_api_token
        return token.get_secret_value() if token else None

    @property
    def database_dsn(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def masked(self) -> dict[str, Any]:
        """The effective settings for the start-of-run log line: secrets shown as set/unset."""
        return {
            "TF_SERVICE_API_TOKEN": "set" if self.tf_service_api_token else "unset",
            "TF_USER_API_TOKEN": "set" if self.tf_user_api_token else "unset",
            "JOB_FALLBACK_ENABLED": self.job_fallback_enabled,
            "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": self.job_fallback_stuck_threshold_minutes,
            "TFY_HOST": self.tfy_host or "unset",
            "DATABASE_URL": _mask_dsn(self.database_dsn) if self.database_dsn else "embedded",
            "JOB_FALLBACK_CONCURRENCY": self.job_fallback_concurrency,
            "JOB_FALLBACK_HTTP_TIMEOUT_SECONDS": self.job_fallback_http_timeout_seconds,
            "JOB_FALLBACK_SETTLE_SECONDS": self.job_fallback_settle_seconds,
            "JOB_FALLBACK_MAX_ATTEMPTS": self.job_fallback_max_attempts,
            "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": self.job_fallback_retry_backoff_seconds,
        }


def _mask_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply non-None flag overrides, and validate.

    Raises UsageError with one line per the first invalid variable.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        env = field.upper()
        allowed = _ALLOWED.get(env, "a valid value")
        raise UsageError(f"{env} is invalid ({error['msg']}); set it to {allowed}") from None
