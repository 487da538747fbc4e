"""The webhook message: a real sweep process against the sandbox, a local receiver standing in
for the webhook; the body checked against the sweep's own report (`--output json`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobfallback.store import open_store
from tests.e2e.harness import Jobfallback, Result
from tests.ops.receiver import Receiver

pytestmark = pytest.mark.e2e


def sweep_notifying(jf: Jobfallback, webhook: Receiver, *args: str, **env: str) -> Result:
    return jf.sweep(*args, env={"JOB_FALLBACK_WEBHOOK_URL": webhook.url, **env})


def sources(jf: Jobfallback) -> dict[int, str]:
    """CLUSTER/WORKSPACE of each stored config, by id."""
    with open_store(jf.database_url) as store:
        return {
            c.id: f"{c.source_cluster_id}/{c.source_workspace_id}" for c in store.configs.list()
        }


def test_a_pass_that_moved_posts_one_slack_message_and_quiet_passes_none(
    jf: Jobfallback, webhook: Receiver
) -> None:
    dry_run = sweep_notifying(jf, webhook, "--dry-run")
    assert dry_run.returncode == 0, dry_run
    assert webhook.requests == []  # a dry run moves nothing

    result = sweep_notifying(jf, webhook)
    assert result.returncode == 0, result
    post = webhook.only()
    assert (post.method, post.content_type) == ("POST", "application/json")
    body = json.loads(post.body)
    assert body["text"].startswith(
        f"jobfallback {jf.sandbox.url.removeprefix('http://')}: moved 3,"
    )
    summary, *moves = body["blocks"]
    assert summary == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    # One block per move, naming its source run, job, from, to and outcome.
    from_ = sources(jf)
    expected = sorted(
        f"*moved* `{m['sourceRun']}` (job `{m['job']}`): {from_[m['configId']]}"
        f" → {m['destinationWorkspaceFqn']}"
        for m in result.json()["moves"]
    )
    assert sorted(block["text"]["text"] for block in moves) == expected

    quiet = sweep_notifying(jf, webhook)
    assert quiet.returncode == 0, quiet
    assert quiet.json()["report"]["stuck"] == 0
    assert len(webhook.requests) == 1  # nothing moved, failed or parked: no message


def test_the_json_body_carries_the_report_and_each_move(jf: Jobfallback, webhook: Receiver) -> None:
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    result = sweep_notifying(jf, webhook, JOB_FALLBACK_WEBHOOK_FORMAT="json")
    assert result.returncode == 1, result
    output = result.json()
    raw = webhook.only().body.decode()
    assert jf.sandbox.token not in raw
    body = json.loads(raw)

    report = {k: v for k, v in output["report"].items() if k != "warnings"}
    assert (body["report"], body["exitCode"]) == (report, 1)
    assert body["summary"].startswith(f"jobfallback {body['instance']}: moved 0, failed 3,")
    from_ = sources(jf)
    expected: list[dict[str, Any]] = [
        {
            "sourceRunId": m["sourceRunId"],
            "sourceRun": m["sourceRun"],
            "job": m["job"],
            "from": from_[m["configId"]],
            "to": m["destinationWorkspaceFqn"],
            "outcome": "failed",
            "detail": m["detail"],
        }
        for m in output["moves"]
    ]
    assert sorted(body["moves"], key=lambda m: m["sourceRunId"]) == sorted(
        expected, key=lambda m: m["sourceRunId"]
    )
    assert all("500" in move["detail"] for move in body["moves"])


def test_the_slack_body_lists_twenty_moves_and_escapes_what_mrkdwn_would_obey(
    jf: Jobfallback, webhook: Receiver
) -> None:
    state = jf.sandbox.state
    run = state.run("run-train-1")
    assert run is not None
    for i in range(22):  # with the demo's three: 25 stuck runs
        state.add_run(
            application_id=run["applicationId"],
            name=f"<!here> & <@U0{i}>",  # a mention, were it not escaped
            created_at=state.now_ms - 300 * 60_000,
        )
    result = sweep_notifying(jf, webhook)
    assert result.returncode == 0, result
    assert result.json()["report"]["moved"] == 25
    raw = webhook.only().body.decode()
    assert "<!here>" not in raw
    assert "<@U0" not in raw
    blocks = json.loads(raw)["blocks"]
    assert len(blocks) == 1 + 20 + 1
    assert "&lt;!here&gt; &amp; &lt;@U0" in json.dumps(blocks)
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "… and 5 more: `jobfallback history` lists them"}],
    }


@pytest.mark.parametrize(
    "config_gone", [True, False], ids=["its-config-removed", "planned-none-by-max-moves"]
)
def test_resumed_moves_are_listed_with_their_source_while_their_config_exists(
    jf: Jobfallback, webhook: Receiver, config_gone: bool
) -> None:
    # A failed move is due at once, and a trigger whose run is not listed made none.
    no_waiting = {"JOB_FALLBACK_RETRY_BACKOFF_SECONDS": "0", "JOB_FALLBACK_SETTLE_SECONDS": "0"}
    jf.sandbox.set_faults(rate=1.0, kinds=["500"], endpoints=["trigger"])
    assert sweep_notifying(jf, webhook, **no_waiting).returncode == 1
    jf.sandbox.set_faults(rate=0.0, kinds=[])
    from_ = sources(jf)
    if config_gone:
        with open_store(jf.database_url) as store:
            for config_id in from_:
                store.configs.remove(config_id)

    # Nothing planned (no config, or --max-moves 0): the failed moves come back as resumed ones.
    result = sweep_notifying(
        jf, webhook, "--max-moves", "0", JOB_FALLBACK_WEBHOOK_FORMAT="json", **no_waiting
    )
    output = result.json()
    assert (output["moves"], output["report"]["moved"]) == ([], 3)
    body = json.loads(webhook.requests[-1].body)
    assert sorted((m["sourceRun"], m["job"], m["from"], m["to"]) for m in body["moves"]) == sorted(
        (
            r["sourceRunName"],
            r["sourceApplicationName"],
            None if config_gone else from_[r["configId"]],
            r["destinationWorkspaceFqn"],
        )
        for r in output["resumes"]
    )
    assert len(body["moves"]) == 3
