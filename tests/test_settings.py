"""Settings: defaults, flag overrides, and one clear line (exit 2) for every bad value."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from jobfallback.breaker import BreakerPolicy
from jobfallback.cli import app
from jobfallback.errors import UsageError
from jobfallback.plan import Limits
from jobfallback.settings import load_settings, settings_with_problems
from jobfallback.shard import Shard


def test_defaults() -> None:
    settings = load_settings()
    assert settings.job_fallback_enabled is False
    assert settings.job_fallback_stuck_threshold_minutes == 60
    assert settings.service_token is None
    assert settings.database_dsn is None
    assert settings.tfy_host is None


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "30")
    monkeypatch.setenv("TFY_HOST", "https://env.example")
    settings = load_settings(job_fallback_stuck_threshold_minutes=90, tfy_host=None)
    assert settings.job_fallback_stuck_threshold_minutes == 90
    assert settings.tfy_host == "https://env.example"


def test_user_token_falls_back_to_service_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_SERVICE_API_TOKEN", "svc-token")
    assert load_settings().user_token == "svc-token"
    monkeypatch.setenv("TF_USER_API_TOKEN", "user-token")
    assert load_settings().user_token == "user-token"
    assert load_settings().service_token == "svc-token"


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "abc", "whole number of minutes"),
        ("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "-5", "whole number of minutes"),
        ("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "0", "whole number of minutes"),
        ("JOB_FALLBACK_ENABLED", "maybe", "true or false"),
        ("DATABASE_URL", "mysql://u:pw@h/db", "postgresql://"),
        ("DATABASE_URL", "postgresql://u:pw@h:notaport/db", "postgresql://"),
        ("TFY_HOST", "acme.truefoundry.cloud", "http(s) URL"),
        ("JOB_FALLBACK_CONCURRENCY", "0", "whole number"),
        ("JOB_FALLBACK_HTTP_TIMEOUT_SECONDS", "0", "seconds above 0"),
        ("JOB_FALLBACK_HTTP_TIMEOUT_SECONDS", "soon", "seconds above 0"),
        ("JOB_FALLBACK_PASS_DEADLINE_SECONDS", "0", "below the CronJob's activeDeadlineSeconds"),
        ("DATABASE_URL", "postgresql://u:p@w@h/db", "percent-encode"),
        ("DATABASE_URL", "postgresql://u:p/w@h/db", "percent-encode"),
        ("TFY_HOST", "http://acme.truefoundry.cloud", "clear text"),
        ("TFY_HOST", "https://u:pw@acme.truefoundry.cloud", "holds credentials"),
        ("TF_SERVICE_API_TOKEN", "tok\x1ben", "a TrueFoundry API token"),
        ("JOB_FALLBACK_MAX_MOVES", "-1", "moves per pass, 0 or more"),
        ("JOB_FALLBACK_MAX_MOVES_PER_DESTINATION", "many", "one destination workspace"),
        ("JOB_FALLBACK_MAX_MOVES_PER_SOURCE", "-1", "one source workspace"),
        ("JOB_FALLBACK_COOLDOWN_MINUTES", "525601", "minutes from 0 to 525600"),
        ("JOB_FALLBACK_MAX_HOPS", "0", "from 1 to 10"),
        ("JOB_FALLBACK_BREAKER_FAILURE_RATIO", "0", "above 0 and at most 1"),
        ("JOB_FALLBACK_BREAKER_FAILURE_RATIO", "1.5", "above 0 and at most 1"),
        ("JOB_FALLBACK_BREAKER_MIN_MOVES", "0", "1 or more"),
        ("JOB_FALLBACK_BREAKER_FAILED_PASSES", "0", "1 or more"),
        ("JOB_FALLBACK_BREAKER_QUIET_MINUTES", "10081", "minutes from 0 to 10080"),
        ("JOB_FALLBACK_SHARD_COUNT", "1001", "from 1 to 1000"),
        ("JOB_COMPLETION_INDEX", "-1", "--shard INDEX/COUNT"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(name)
    assert allowed in message
    assert "\n" not in message
    assert ":pw@" not in message  # a DATABASE_URL password is never echoed


def test_bad_setting_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "abc")
    # Text logs: one `error:` line (JSON logs make it one JSON event: tests/e2e/test_json_logs.py).
    result = CliRunner().invoke(app, ["sweep", "--dry-run", "--log-format", "text"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "JOB_FALLBACK_STUCK_THRESHOLD_MINUTES" in lines[0]


def test_a_token_loses_its_surrounding_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_SERVICE_API_TOKEN", "  tok-123\r\n")
    monkeypatch.setenv("TF_USER_API_TOKEN", "\tuser-456\n")
    settings = load_settings()
    assert (settings.service_token, settings.user_token) == ("tok-123", "user-456")


def test_the_pass_deadline_defaults_below_the_chart_deadline() -> None:
    assert load_settings().job_fallback_pass_deadline_seconds == 200  # the chart's is 240


def test_masked_settings_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_SERVICE_API_TOKEN", "tok-secret-123")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw-secret-456@db:5432/jf")
    shown = str(load_settings().masked())
    assert "tok-secret-123" not in shown
    assert "pw-secret-456" not in shown
    assert load_settings().masked()["DATABASE_URL"] == "postgresql://db:5432/jf"


def test_masked_settings_name_every_setting_a_sweep_acts_on() -> None:
    shown = load_settings().masked()
    assert {
        "JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS": 5.0,
        "JOB_FALLBACK_METRICS_INSTANCE": "unset",
        "JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": 10.0,
    }.items() <= shown.items()


def test_sweep_flags_override_enabled_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_ENABLED", "true")
    off = CliRunner().invoke(app, ["sweep", "--disabled", "--output", "json"])
    assert (off.exit_code, off.stdout.count("sweeping is disabled")) == (0, 1)

    monkeypatch.setenv("JOB_FALLBACK_ENABLED", "false")
    on = CliRunner().invoke(app, ["sweep", "--enabled", "--output", "json"])
    # Past the enabled check, the next one stops it: no token.
    assert on.exit_code == 0
    assert "TF_SERVICE_API_TOKEN is not set" in on.stdout


def test_a_bad_sweep_only_setting_is_left_at_its_default_outside_a_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "abc")
    with pytest.raises(UsageError, match="JOB_FALLBACK_STUCK_THRESHOLD_MINUTES is invalid"):
        load_settings()
    assert load_settings(for_sweep=False).job_fallback_stuck_threshold_minutes == 60
    monkeypatch.setenv("TFY_HOST", "not-a-url")  # every command that calls the API reads it
    with pytest.raises(UsageError, match="TFY_HOST is invalid"):
        load_settings(for_sweep=False)


def test_settings_with_problems_names_every_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_STUCK_THRESHOLD_MINUTES", "abc")
    monkeypatch.setenv("JOB_FALLBACK_CONCURRENCY", "0")
    settings, problems = settings_with_problems()
    assert set(problems) == {"job_fallback_stuck_threshold_minutes", "job_fallback_concurrency"}
    assert (settings.job_fallback_stuck_threshold_minutes, settings.job_fallback_concurrency) == (
        60,
        16,
    )


def test_the_guard_rails_default_to_the_planners_own() -> None:
    # One source of truth: a sweep without settings plans as the planner's tests assume.
    settings = load_settings()
    assert (settings.limits, settings.breaker) == (Limits(), BreakerPolicy())


def test_the_guard_rails_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "JOB_FALLBACK_MAX_MOVES": "7",
        "JOB_FALLBACK_MAX_MOVES_PER_DESTINATION": "3",
        "JOB_FALLBACK_MAX_MOVES_PER_SOURCE": "0",
        "JOB_FALLBACK_COOLDOWN_MINUTES": "0",
        "JOB_FALLBACK_MAX_HOPS": "10",
        "JOB_FALLBACK_BREAKER_FAILURE_RATIO": "1",
        "JOB_FALLBACK_BREAKER_MIN_MOVES": "1",
        "JOB_FALLBACK_BREAKER_FAILED_PASSES": "9",
        "JOB_FALLBACK_BREAKER_QUIET_MINUTES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(job_fallback_max_moves=5)  # a flag wins
    assert settings.limits == Limits(
        max_moves=5, per_destination=3, per_source=0, cooldown_minutes=0, max_hops=10
    )
    assert settings.breaker == BreakerPolicy(
        failure_ratio=1.0, min_moves=1, failed_passes=9, quiet_minutes=0
    )


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({}, None),
        ({"JOB_FALLBACK_SHARD_COUNT": "4", "JOB_COMPLETION_INDEX": "3"}, Shard(3, 4)),
        # A Job of one pod, or an Indexed Job run without sharding: every source.
        ({"JOB_FALLBACK_SHARD_COUNT": "1", "JOB_COMPLETION_INDEX": "0"}, None),
        ({"JOB_COMPLETION_INDEX": "2"}, None),
    ],
)
def test_the_shard_comes_from_the_count_and_the_completion_index(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], shard: Shard | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().shard == shard


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"JOB_FALLBACK_SHARD_COUNT": "4"}, "4 shards but JOB_COMPLETION_INDEX is unset"),
        (
            {"JOB_FALLBACK_SHARD_COUNT": "4", "JOB_COMPLETION_INDEX": "4"},
            "JOB_COMPLETION_INDEX 4 is not below 4",
        ),
    ],
)
def test_a_shard_count_without_a_fitting_index_names_both_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], why: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("JOB_FALLBACK_SHARD_COUNT is invalid")
    assert why in message
    assert "--shard INDEX/COUNT" in message  # the fix
    assert "\n" not in message
    # Only a sweep shards: other commands run.
    assert load_settings(for_sweep=False).shard is None


def test_the_shard_flag_stands_for_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_SHARD_COUNT", "4")  # no index: an error without the flag
    settings = load_settings(job_fallback_shard_count=2, job_completion_index=1)
    assert settings.shard == Shard(1, 2)
