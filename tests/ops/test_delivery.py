"""A Pushgateway or webhook that is down, refusing or hung never changes a sweep's exit code,
costs at most its timeout, and is one warning line (which never shows the webhook URL: the
harness fails any output holding its secret part)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_sweep_cli import closed_port
from tests.e2e.harness import EnvOverrides, Jobfallback, Result
from tests.ops.conftest import webhook_path
from tests.ops.receiver import Receiver, receiving

pytestmark = pytest.mark.e2e

PUBLISHER = "jobfallback.publish"  # the logger of the deliveries' lines
TIMEOUT = 1.0  # each receiver's, in seconds


def sweep_delivering(
    jf: Jobfallback,
    pushgateway_url: str,
    webhook_url: str,
    *args: str,
    env: EnvOverrides | None = None,
) -> Result:
    return jf.sweep(
        "--pushgateway-url",
        pushgateway_url,
        *args,
        env={
            "JOB_FALLBACK_WEBHOOK_URL": webhook_url,
            "JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS": str(TIMEOUT),
            "JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT),
            **(env or {}),
        },
    )


def delivery_lines(jf: Jobfallback, result: Result) -> list[dict[str, Any]]:
    return [e for e in jf.log_events(result) if e["logger"] == PUBLISHER]


@pytest.fixture
def hung() -> Iterator[tuple[Receiver, Receiver]]:
    """A Pushgateway and a webhook that take each request and never answer in time."""
    with ExitStack() as stack:
        yield (
            stack.enter_context(receiving(delay=60)),
            stack.enter_context(receiving(webhook_path(), delay=60)),
        )


def test_unreachable_receivers_and_an_unwritable_textfile_are_one_warning_each(
    jf: Jobfallback, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    no_directory = tmp_path / "missing" / "jobfallback.prom"
    result = sweep_delivering(jf, down, down + webhook_path(), "--metrics-file", str(no_directory))
    assert result.returncode == 0, result
    assert result.json()["report"]["moved"] == 3
    lines = delivery_lines(jf, result)
    assert [(e["level"], e["msg"]) for e in lines] == [
        ("warning", "could not write the metrics file"),
        ("warning", "metrics push to the Pushgateway failed"),
        ("warning", "webhook notification failed"),
    ]
    # Retried while its timeout lasted (pauses of 0.5 s, then 1 s: two attempts fit in 1 s).
    assert lines[2]["error"] == "ConnectError after 2 attempt(s)"


def test_a_refusing_webhook_is_retried_a_bounded_number_of_times(
    jf: Jobfallback, pushgateway: Receiver
) -> None:
    with receiving(webhook_path(), status=503) as refusing:
        result = sweep_delivering(
            jf, pushgateway.url, refusing.url, env={"JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS": "10"}
        )
    assert result.returncode == 0, result
    assert len(refusing.requests) == 3
    (line,) = [e for e in delivery_lines(jf, result) if e["level"] == "warning"]
    assert line["error"] == "HTTP 503 after 3 attempt(s)"


def test_hung_receivers_cost_at_most_their_timeout_and_keep_the_exit_code(
    jf: Jobfallback, hung: tuple[Receiver, Receiver]
) -> None:
    pushgateway, webhook = hung
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    started = time.monotonic()
    result = sweep_delivering(jf, pushgateway.url, webhook.url)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result  # the failed moves' code, not the deliveries'
    assert (len(pushgateway.requests), len(webhook.requests)) == (1, 1)

    events = jf.log_events(result)
    lines = delivery_lines(jf, result)
    # One warning each: the library's own timeout ("... failed") or, should it not end the
    # request by then, ours ("...: no answer in time; not waiting for it").
    assert [e["level"] for e in lines] == ["warning", "warning"]
    assert lines[0]["msg"].startswith("metrics push to the Pushgateway")
    assert lines[1]["msg"].startswith("webhook notification")
    # Both waited for together: the last line comes one timeout after the sweep's own last line.
    sweep_ended = datetime.fromisoformat(events[len(events) - len(lines) - 1]["ts"])
    waited = (datetime.fromisoformat(lines[-1]["ts"]) - sweep_ended).total_seconds()
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 0.5
    assert elapsed < 30  # the receivers hold their answers for 60 s
