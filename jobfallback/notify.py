"""The webhook message after a sweep that moved, failed, parked or flagged something: one
message with the pass's summary and those moves (source run, job, from, to, outcome).

Two bodies: `slack` (the default: `text` for the notification, `blocks` for the channel, so a
Slack incoming webhook or anything Slack-compatible takes it as is) and `json` (the report and
every listed move, for a program). Names come from the API, so the Slack body escapes what
mrkdwn would obey (`<!channel>`, links), and every string of either body has the API token
scrubbed out, whatever text an error brought along.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from jobfallback.models import FallbackConfig
from jobfallback.move import Outcome
from jobfallback.plan import Source
from jobfallback.redact import scrub
from jobfallback.truefoundry.retry import RETRY_STATUSES

if TYPE_CHECKING:
    from jobfallback.sweep import SweepResult

WebhookFormat = Literal["slack", "json"]
# Outcomes worth a message: something moved, or a person should look (`jobfallback moves`).
NOTABLE = (Outcome.MOVED, Outcome.FAILED, Outcome.PARKED, Outcome.FLAGGED)
# Slack takes at most 50 blocks: one per move, the summary, and one saying how many more.
SLACK_MOVES = 20
DETAIL_CHARS = 300  # an outcome's detail in Slack; the json body keeps it whole
ATTEMPTS = 3
FIRST_PAUSE_SECONDS = 0.5  # doubles per attempt


class WebhookError(Exception):
    """The message was not accepted; the text names no URL (the URL is the secret)."""


@dataclass(frozen=True)
class MoveLine:
    source_run_id: str
    source_run: str
    job: str
    source: str | None  # CLUSTER/WORKSPACE; None for a resumed move whose config is gone
    destination: str
    outcome: Outcome
    detail: str


def notable(result: SweepResult) -> bool:
    return any(outcome.outcome in NOTABLE for outcome in result.outcomes)


def move_lines(result: SweepResult, configs: Sequence[FallbackConfig]) -> list[MoveLine]:
    """The notable moves of the pass, this pass's own and resumed ones, in outcome order."""
    planned = {move.run.id: move for move in result.plan.moves}
    resumed = {record.source_run_id: record for record in result.resumes}
    by_id = {config.id: config for config in configs}
    lines: list[MoveLine] = []
    for outcome in result.outcomes:
        if outcome.outcome not in NOTABLE:
            continue
        run_id = outcome.source_run_id
        if run_id in planned:
            move = planned[run_id]
            run, job = move.run.name, move.application.name
            source: str | None = _source(move.config)
            destination = move.destination_workspace_fqn
        else:
            record = resumed[run_id]
            run, job = record.source_run_name, record.source_application_name
            config = None if record.config_id is None else by_id.get(record.config_id)
            source = None if config is None else _source(config)
            destination = record.destination_workspace_fqn
        lines.append(
            MoveLine(run_id, run, job, source, destination, outcome.outcome, outcome.detail)
        )
    return lines


def _source(config: FallbackConfig) -> str:
    return str(Source(config.source_cluster_id, config.source_workspace_id))


def message(
    result: SweepResult,
    configs: Sequence[FallbackConfig],
    *,
    instance: str,
    body_format: WebhookFormat,
    token: str | None,
) -> dict[str, Any]:
    lines = move_lines(result, configs)
    summary = _summary(result, instance)
    if body_format == "json":
        body: dict[str, Any] = {
            "instance": instance,
            "summary": summary,
            "exitCode": result.exit_code,
            "report": result.report.model_dump(mode="json", by_alias=True, exclude={"warnings"}),
            "moves": [
                {
                    "sourceRunId": line.source_run_id,
                    "sourceRun": line.source_run,
                    "job": line.job,
                    "from": line.source,
                    "to": line.destination,
                    "outcome": line.outcome.value,
                    "detail": line.detail,
                }
                for line in lines
            ],
        }
    else:
        body = {"text": summary, "blocks": _blocks(summary, lines)}
    scrubbed: dict[str, Any] = _scrubbed(body, token)
    return scrubbed


def _summary(result: SweepResult, instance: str) -> str:
    r = result.report
    return (
        f"jobfallback {instance}: moved {r.moved}, failed {r.failed}, parked {r.parked},"
        f" flagged {r.flagged} (stuck {r.stuck}, resumed {r.resumed}; sources"
        f" {r.sources_scanned}/{r.sources_total} listed, {r.sources_failed} failed;"
        f" exit {result.exit_code})"
    )


def _mrkdwn(text: str) -> str:
    """Text Slack shows as is: mrkdwn acts on &, < and > (mentions, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _blocks(summary: str, lines: Sequence[MoveLine]) -> list[dict[str, Any]]:
    blocks = [_section(_mrkdwn(summary))]
    for line in lines[:SLACK_MOVES]:
        text = (
            f"*{line.outcome.value}* `{_mrkdwn(line.source_run)}` (job `{_mrkdwn(line.job)}`):"
            f" {_mrkdwn(line.source or 'source unknown')} → {_mrkdwn(line.destination)}"
        )
        if line.outcome != Outcome.MOVED and line.detail:
            text += f"\n{_mrkdwn(line.detail[:DETAIL_CHARS])}"
        blocks.append(_section(text))
    if len(lines) > SLACK_MOVES:
        more = f"… and {len(lines) - SLACK_MOVES} more: `jobfallback history` lists them"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def _scrubbed(value: Any, token: str | None) -> Any:
    if isinstance(value, str):
        return scrub(value, token)
    if isinstance(value, dict):
        return {key: _scrubbed(item, token) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, token) for item in value]
    return value


def post(url: str, body: dict[str, Any], budget_seconds: float) -> None:
    """POST `body`, retrying a refused connection, a timeout, 429 and 5xx while `budget_seconds`
    (all attempts together) lasts, at most ATTEMPTS times. Raises WebhookError."""
    deadline = time.monotonic() + budget_seconds
    pause = FIRST_PAUSE_SECONDS
    with httpx.Client(follow_redirects=False) as http:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = http.post(url, json=body, timeout=deadline - time.monotonic())
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # its text may quote the URL
            else:
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt == ATTEMPTS or time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            pause *= 2
    raise WebhookError(f"{problem} after {attempt} attempt(s)")
