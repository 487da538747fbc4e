"""Every environment variable jobfallback reads, validated once.

Flags override the environment: the CLI passes them as keyword arguments to `load_settings`.
Invalid values become one UsageError line naming the variable and what is allowed (exit 2).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AliasGenerator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobfallback.breaker import BreakerPolicy
from jobfallback.errors import UsageError
from jobfallback.plan import Limits
from jobfallback.shard import MAX_COUNT, Shard

_ALLOWED = {
    "TF_SERVICE_API_TOKEN": "a TrueFoundry API token",
    "TF_USER_API_TOKEN": "a TrueFoundry API token",
    "JOB_FALLBACK_ENABLED": "true or false",
    "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES": "a whole number of minutes from 1 to 525600",
    "TFY_HOST": (
        "an https URL without credentials such as https://acme.truefoundry.cloud "
        "(http only for a loopback address)"
    ),
    "DATABASE_URL": "a URL such as postgresql://user:password@host:5432/dbname",
    "JOB_FALLBACK_CONCURRENCY": "a whole number from 1 to 256",
    "JOB_FALLBACK_HTTP_TIMEOUT_SECONDS": "a number of seconds above 0 and at most 600",
    "JOB_FALLBACK_SETTLE_SECONDS": "a whole number of seconds from 0 to 86400",
    "JOB_FALLBACK_MAX_ATTEMPTS": "a whole number from 1 to 100",
    "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "a whole number of seconds from 0 to 86400",
    "JOB_FALLBACK_PASS_DEADLINE_SECONDS": (
        "a whole number of seconds from 1 to 86400, below the CronJob's activeDeadlineSeconds"
    ),
    "JOB_FALLBACK_PUSHGATEWAY_URL": (
        "a Pushgateway URL without credentials such as http://pushgateway.monitoring:9091"
    ),
    "JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS": "a number of seconds above 0 and at most 60",
    "JOB_FALLBACK_METRICS_FILE": "a path ending in .prom (node-exporter reads only those)",
    "JOB_FALLBACK_WEBHOOK_URL": "an http(s) URL such as https://hooks.example.com/services/...",
    "JOB_FALLBACK_WEBHOOK_FORMAT": "slack or json",
    "JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": "a number of seconds above 0 and at most 60",
    "JOB_FALLBACK_MAX_MOVES": "a whole number of moves per pass, 0 or more",
    "JOB_FALLBACK_MAX_MOVES_PER_DESTINATION": (
        "a whole number of moves into one destination workspace per pass, 0 or more"
    ),
    "JOB_FALLBACK_MAX_MOVES_PER_SOURCE": (
        "a whole number of moves out of one source workspace per pass, 0 or more"
    ),
    "JOB_FALLBACK_COOLDOWN_MINUTES": "a whole number of minutes from 0 to 525600",
    "JOB_FALLBACK_MAX_HOPS": "a whole number of moves per run from 1 to 10",
    "JOB_FALLBACK_BREAKER_FAILURE_RATIO": "a share of failed moves above 0 and at most 1, e.g. 0.5",
    "JOB_FALLBACK_BREAKER_MIN_MOVES": "a whole number of moves, 1 or more",
    "JOB_FALLBACK_BREAKER_FAILED_PASSES": "a whole number of passes, 1 or more",
    "JOB_FALLBACK_BREAKER_QUIET_MINUTES": "a whole number of minutes from 0 to 10080",
    "JOB_FALLBACK_SHARD_COUNT": (
        f"a whole number from 1 to {MAX_COUNT}, with JOB_COMPLETION_INDEX from 0 to COUNT-1 (an "
        "Indexed Job sets it), or pass --shard INDEX/COUNT"
    ),
    "JOB_COMPLETION_INDEX": (
        "a whole number from 0 to JOB_FALLBACK_SHARD_COUNT-1 (an Indexed Job sets it), or "
        "pass --shard INDEX/COUNT"
    ),
}
# Loopback names a sandbox or a port-forward listens on: the only hosts plain http may reach,
# since the token would otherwise cross the network in clear text.
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK_NAMES


def _check_http_url(url: str) -> None:
    """An http(s) URL naming a host, without user:password (what would carry them would also
    show them in a log)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("holds credentials")


def _clean_token(value: str) -> str:
    """A token as it was meant: surrounding whitespace (a trailing newline from a file or a
    Secret) dropped; anything else outside printable ASCII refused, since the HTTP library's
    error would quote the header, token and all. The message never shows the value."""
    token = value.strip()
    if not all("!" <= char <= "~" for char in token):
        raise ValueError("holds a space, a control or a non-ASCII character; set the token alone")
    return token


def _cap(default: int | None) -> int:
    """A cap's default as plan.Limits has it: a number (its None, no cap, is no setting)."""
    if default is None:
        raise TypeError("plan.Limits' default caps must be numbers: a setting has no 'no cap'")
    return default


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
    # The whole pass, listing and moves: what is unfinished then is left to the next pass. Below
    # the chart's activeDeadlineSeconds (240), so a pass reports before Kubernetes kills it.
    job_fallback_pass_deadline_seconds: int = Field(default=200, ge=1, le=86400)
    # Metrics and the webhook (README "Metrics and alerts", "Notifications"): each delivery is
    # bounded by its timeout and never changes the sweep's exit code.
    job_fallback_pushgateway_url: str | None = None
    job_fallback_pushgateway_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    job_fallback_metrics_file: str | None = None
    job_fallback_metrics_instance: str | None = None  # unset: TFY_HOST's host
    job_fallback_webhook_url: SecretStr | None = None  # it authorises posting: a secret
    job_fallback_webhook_format: Literal["slack", "json"] = "slack"
    job_fallback_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Guard rails (README "Guard rails"). Their defaults are the planner's own (plan.Limits,
    # breaker.BreakerPolicy): one source of truth for a sweep and for a test of the planner.
    job_fallback_max_moves: int = Field(default=_cap(Limits.max_moves), ge=0)
    job_fallback_max_moves_per_destination: int = Field(default=_cap(Limits.per_destination), ge=0)
    job_fallback_max_moves_per_source: int = Field(default=_cap(Limits.per_source), ge=0)
    job_fallback_cooldown_minutes: int = Field(default=Limits.cooldown_minutes, ge=0, le=525600)
    job_fallback_max_hops: int = Field(default=Limits.max_hops, ge=1, le=10)
    job_fallback_breaker_failure_ratio: float = Field(
        default=BreakerPolicy.failure_ratio, gt=0, le=1
    )
    job_fallback_breaker_min_moves: int = Field(default=BreakerPolicy.min_moves, ge=1)
    job_fallback_breaker_failed_passes: int = Field(default=BreakerPolicy.failed_passes, ge=1)
    job_fallback_breaker_quiet_minutes: int = Field(
        default=BreakerPolicy.quiet_minutes, ge=0, le=10080
    )
    # Sharding (README "Scaling out: shards"): the index is what Kubernetes sets in each pod of
    # an Indexed Job, so the chart passes only the count. Declared before the count, whose
    # check reads it.
    job_completion_index: int | None = Field(default=None, ge=0)
    job_fallback_shard_count: int = Field(default=1, ge=1, le=MAX_COUNT)

    @field_validator(
        "tf_service_api_token",
        "tf_user_api_token",
        "database_url",
        "job_fallback_pushgateway_url",
        "job_fallback_metrics_file",
        "job_fallback_metrics_instance",
        "job_fallback_webhook_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tf_service_api_token", "tf_user_api_token", mode="before")
    @classmethod
    def _check_token(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return _clean_token(raw) if isinstance(raw, str) else value

    @field_validator("tfy_host", mode="before")
    @classmethod
    def _check_host(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        host = str(value).strip()
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        if "@" in parts.netloc:
            raise ValueError("holds credentials; the token goes in TF_SERVICE_API_TOKEN")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("plain http would send the token in clear text")
        return host.rstrip("/")

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> Any:
        if value is None:
            return None
        from jobfallback.store import dsn  # psycopg loads only for commands that use it

        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        dsn.parse(raw)
        return raw

    @field_validator("job_fallback_pushgateway_url")
    @classmethod
    def _check_pushgateway_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # prometheus_client reads a bare host:port as http.
        url = value.strip() if "://" in value else f"http://{value.strip()}"
        _check_http_url(url)
        return url.rstrip("/")

    @field_validator("job_fallback_metrics_file")
    @classmethod
    def _check_metrics_file(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith(".prom"):
            raise ValueError("node-exporter's textfile collector ignores a file not ending .prom")
        return value

    @field_validator("job_fallback_webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_http_url(value.get_secret_value().strip())
        return value

    @field_validator("job_fallback_shard_count")
    @classmethod
    def _check_shard(cls, count: int, info: ValidationInfo) -> int:
        index = info.data.get("job_completion_index")
        if count > 1 and index is None:
            raise ValueError(f"{count} shards but JOB_COMPLETION_INDEX is unset")
        if count > 1 and index is not None and index >= count:
            raise ValueError(f"JOB_COMPLETION_INDEX {index} is not below {count}")
        return count

    @property
    def shard(self) -> Shard | None:
        """The shard of the sources this sweep takes; None: all of them (one shard)."""
        index = self.job_completion_index
        # A count above 1 comes with an index (checked above); the test only narrows the type.
        if self.job_fallback_shard_count == 1 or index is None:
            return None
        return Shard(index, self.job_fallback_shard_count)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_moves=self.job_fallback_max_moves,
            per_destination=self.job_fallback_max_moves_per_destination,
            per_source=self.job_fallback_max_moves_per_source,
            cooldown_minutes=self.job_fallback_cooldown_minutes,
            max_hops=self.job_fallback_max_hops,
        )

    @property
    def breaker(self) -> BreakerPolicy:
        return BreakerPolicy(
            failure_ratio=self.job_fallback_breaker_failure_ratio,
            min_moves=self.job_fallback_breaker_min_moves,
            failed_passes=self.job_fallback_breaker_failed_passes,
            quiet_minutes=self.job_fallback_breaker_quiet_minutes,
        )

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
            "DATABASE_URL": _masked_dsn(self.database_dsn) if self.database_dsn else "embedded",
            "JOB_FALLBACK_CONCURRENCY": self.job_fallback_concurrency,
            "JOB_FALLBACK_HTTP_TIMEOUT_SECONDS": self.job_fallback_http_timeout_seconds,
            "JOB_FALLBACK_SETTLE_SECONDS": self.job_fallback_settle_seconds,
            "JOB_FALLBACK_MAX_ATTEMPTS": self.job_fallback_max_attempts,
            "JOB_FALLBACK_RETRY_BACKOFF_SECONDS": self.job_fallback_retry_backoff_seconds,
            "JOB_FALLBACK_PASS_DEADLINE_SECONDS": self.job_fallback_pass_deadline_seconds,
            "JOB_FALLBACK_PUSHGATEWAY_URL": self.job_fallback_pushgateway_url or "unset",
            "JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS": (
                self.job_fallback_pushgateway_timeout_seconds
            ),
            "JOB_FALLBACK_METRICS_FILE": self.job_fallback_metrics_file or "unset",
            "JOB_FALLBACK_METRICS_INSTANCE": self.job_fallback_metrics_instance or "unset",
            "JOB_FALLBACK_WEBHOOK_URL": "set" if self.job_fallback_webhook_url else "unset",
            "JOB_FALLBACK_WEBHOOK_FORMAT": self.job_fallback_webhook_format,
            "JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": self.job_fallback_webhook_timeout_seconds,
            "JOB_FALLBACK_MAX_MOVES": self.job_fallback_max_moves,
            "JOB_FALLBACK_MAX_MOVES_PER_DESTINATION": self.job_fallback_max_moves_per_destination,
            "JOB_FALLBACK_MAX_MOVES_PER_SOURCE": self.job_fallback_max_moves_per_source,
            "JOB_FALLBACK_COOLDOWN_MINUTES": self.job_fallback_cooldown_minutes,
            "JOB_FALLBACK_MAX_HOPS": self.job_fallback_max_hops,
            "JOB_FALLBACK_BREAKER_FAILURE_RATIO": self.job_fallback_breaker_failure_ratio,
            "JOB_FALLBACK_BREAKER_MIN_MOVES": self.job_fallback_breaker_min_moves,
            "JOB_FALLBACK_BREAKER_FAILED_PASSES": self.job_fallback_breaker_failed_passes,
            "JOB_FALLBACK_BREAKER_QUIET_MINUTES": self.job_fallback_breaker_quiet_minutes,
        }


def _masked_dsn(dsn: str) -> str:
    from jobfallback.store import dsn as parsed

    return parsed.masked(dsn)


# Settings only a sweep reads: a bad value in one stops a sweep (exit 2), never a command that
# does not use it (`history`, `configs list`, `db status`, ...).
SWEEP_ONLY = frozenset(
    {
        "job_fallback_enabled",
        "job_fallback_stuck_threshold_minutes",
        "job_fallback_concurrency",
        "job_fallback_settle_seconds",
        "job_fallback_max_attempts",
        "job_fallback_retry_backoff_seconds",
        "job_fallback_pass_deadline_seconds",
        "job_fallback_pushgateway_url",
        "job_fallback_pushgateway_timeout_seconds",
        "job_fallback_metrics_file",
        "job_fallback_metrics_instance",
        "job_fallback_webhook_url",
        "job_fallback_webhook_format",
        "job_fallback_webhook_timeout_seconds",
        "job_fallback_max_moves",
        "job_fallback_max_moves_per_destination",
        "job_fallback_max_moves_per_source",
        "job_fallback_cooldown_minutes",
        "job_fallback_max_hops",
        "job_fallback_breaker_failure_ratio",
        "job_fallback_breaker_min_moves",
        "job_fallback_breaker_failed_passes",
        "job_fallback_breaker_quiet_minutes",
        "job_completion_index",
        "job_fallback_shard_count",
    }
)


def _problem(error: Any) -> tuple[str, str]:
    """(field, one line naming the variable and what is allowed) of a validation error."""
    # The location is the field's name or its variable's (the alias it was read by).
    field = str(error["loc"][0]).lower() if error["loc"] else "settings"
    env = field.upper()
    allowed = _ALLOWED.get(env, "a valid value")
    return field, f"{env} is invalid ({error['msg']}); set it to {allowed}"


def settings_with_problems(**overrides: Any) -> tuple[Settings, dict[str, str]]:
    """The settings with every invalid one at its default, and {field: the line naming it}
    for each invalid one (`doctor` reports them all and checks what the others allow)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    problems: dict[str, str] = {}
    while True:
        try:
            return Settings(**given), problems
        except ValidationError as exc:
            fresh = dict(_problem(e) for e in exc.errors())
            fresh = {f: m for f, m in fresh.items() if f not in problems}
            if not fresh or any(f not in Settings.model_fields for f in fresh):
                raise UsageError(next(iter(fresh.values()), "settings are invalid")) from None
            problems.update(fresh)
            for name in fresh:
                given[name] = Settings.model_fields[name].get_default(call_default_factory=True)


def load_settings(*, for_sweep: bool = True, **overrides: Any) -> Settings:
    """Read the environment, apply non-None flag overrides, and validate.

    Raises UsageError with one line per the first invalid variable. With `for_sweep=False`
    an invalid sweep-only setting (SWEEP_ONLY) is left at its default instead.
    """
    settings, problems = settings_with_problems(**overrides)
    blocking = [m for f, m in problems.items() if for_sweep or f not in SWEEP_ONLY]
    if blocking:
        raise UsageError(blocking[0])
    return settings
