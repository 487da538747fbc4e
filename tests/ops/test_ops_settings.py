"""The metrics and webhook settings: what each accepts, and one line naming the variable (never
the webhook URL, a secret) for what it refuses."""

from __future__ import annotations

import pytest

from jobfallback.errors import UsageError
from jobfallback.settings import load_settings

WEBHOOK = "https://hooks.example.com/services/T0/B0/whk-settings-secret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOB_FALLBACK_PUSHGATEWAY_URL", "ftp://pushgateway:9091"),
        ("JOB_FALLBACK_PUSHGATEWAY_URL", "http://user:pw@pushgateway:9091"),
        ("JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS", "0"),
        ("JOB_FALLBACK_METRICS_FILE", "/var/lib/node-exporter/jobfallback.txt"),
        ("JOB_FALLBACK_WEBHOOK_URL", WEBHOOK.replace("https", "ftp")),
        ("JOB_FALLBACK_WEBHOOK_FORMAT", "teams"),
        ("JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS", "61"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith(f"{name} is invalid"), message
    assert "\n" not in message
    assert "whk-settings-secret" not in message


def test_what_the_settings_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_FALLBACK_PUSHGATEWAY_URL", "pushgateway.monitoring:9091/")
    monkeypatch.setenv("JOB_FALLBACK_METRICS_FILE", "")  # the chart's unset value
    monkeypatch.setenv("JOB_FALLBACK_WEBHOOK_URL", WEBHOOK)
    settings = load_settings()
    # A bare host:port is http, as prometheus_client reads it.
    assert settings.job_fallback_pushgateway_url == "http://pushgateway.monitoring:9091"
    assert settings.job_fallback_metrics_file is None
    assert settings.job_fallback_webhook_format == "slack"
    masked = settings.masked()
    assert masked["JOB_FALLBACK_WEBHOOK_URL"] == "set"
    assert "whk-settings-secret" not in repr(settings) + str(masked)
