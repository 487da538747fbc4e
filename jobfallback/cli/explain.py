"""`jobfallback explain RUN`: why a run was (not) moved.

It runs the sweep's own pass, as a dry run focused on the run (`SweepOptions.focus`), with the
settings, token and store a sweep uses: every rule is the sweep's, so what it tells is what the
next sweep would decide, never a second reading of the rules. Nothing here decides: it reports
what the pass saw (`SweepResult.sighting`), decided (the plan, held runs, the facts behind them)
and what the journal recorded for the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    HostOption,
    Output,
    OutputOption,
    api_client,
    echo,
    fail,
    opened_store,
    print_json,
    print_table,
    require_host,
    settings_from,
)
from jobfallback.cli.sweep import (
    no_moves,
    shard_option,
    shard_settings,
    source_option,
    sweep_options,
)
from jobfallback.errors import UsageError
from jobfallback.models import CamelModel, FallbackConfig, MoveRecord, RunStatus
from jobfallback.plan import Sighting, Source
from jobfallback.provenance import opted_out, visited
from jobfallback.settings import Settings
from jobfallback.shard import Shard, shard_of
from jobfallback.store import MoveJournal
from jobfallback.sweep import SweepOptions, SweepResult, run_pass
from jobfallback.times import utc_time


class Verdict(StrEnum):
    """What the next sweep does with the run, in one word (the JSON's `decision.verdict`)."""

    MOVE = "move"  # planned: `action` says what a real pass would do given its journal row
    HELD = "held"  # stuck, but a guard rail holds it this pass: `hold` says which
    NOT_STUCK = "not_stuck"  # listed, younger than its threshold (or no longer CREATED)
    NOT_PLANNED = "not_planned"  # stuck, yet the plan skipped it (its warnings say why)
    NOT_LISTED = "not_listed"  # no listing of CREATED runs showed it: see `journal`


class Listed(CamelModel):
    """The run as the pass's listing showed it."""

    run_id: str
    run_name: str
    status: str
    job: str
    job_id: str
    source: str  # CLUSTER/WORKSPACE
    created_at: datetime
    age_minutes: float
    threshold_minutes: int
    stuck: bool


class Decision(CamelModel):
    verdict: Verdict
    summary: str  # one line for people
    config_id: int | None = None  # the config it moves by (held: the one it would move by)
    destination_workspace_fqn: str | None = None
    reason: str | None = None  # why that config: the chain's reason, and configs it passed over
    hold: str | None = None  # plan.Hold: opted_out, hop_limit, cooldown, ... cap_total
    detail: str | None = None  # why it is held
    action: str | None = None  # what a real pass would do given its journal row
    manifest_patch: dict[str, Any] | None = None  # the config's patch: applied to the copy


class GuardRails(CamelModel):
    """The guard rails as this pass saw them for the run."""

    max_moves: int | None
    max_moves_per_source: int | None
    max_moves_per_destination: int | None
    cooldown_minutes: int
    max_hops: int
    breaker_open: str | None  # why it is open; None: closed
    # Read from the labels of the run's version, only for a stuck run; None: not read.
    opted_out: bool | None
    hops: list[str] | None  # the workspaces the job left, in order
    moved_recently: dict[str, datetime]  # other runs of the job moved within the cooldown
    saturated: dict[str, str]  # the chain's destination workspaces counted as saturated: why


class ShardView(CamelModel):
    count: int
    this: int  # the shard the settings (or --shard) name
    owner: int | None  # the shard that sweeps the run's source; None: source unknown
    owned_by_this: bool | None


class Explanation(CamelModel):
    run: str  # as asked: an id or a name
    run_id: str | None  # None: found nowhere
    sweep_enabled: bool  # JOB_FALLBACK_ENABLED: false means a real sweep moves nothing
    listed: Listed | None
    configs: list[FallbackConfig]  # every usable config covering the run's source, chain order
    chain: list[int]  # the ids of those that govern its job, in the order they are tried
    chain_reason: str | None  # why that chain governs it
    decision: Decision
    guard_rails: GuardRails
    shard: ShardView | None  # None: not sharded
    journal: MoveRecord | None
    would_resume: bool  # the journal row is an unfinished move a real pass resumes now
    sources_failed: list[str]  # why sources could not be listed (the run may be in one)


def _owner(sighting: Sighting | None, shard: Shard | None) -> Shard | None:
    """The shard whose sweep takes the sighted run's source (None: not sharded, or not seen)."""
    if sighting is None or shard is None:
        return None
    return Shard(shard_of(sighting.group.source.workspace_id, shard.count), shard.count)


async def _dry_run(
    settings: Settings,
    token: str,
    host: str,
    configs: list[FallbackConfig],
    journal: MoveJournal,
    options: SweepOptions,
) -> SweepResult:
    """The pass the sweep that owns the run would take now. Sharded, the run's source is not
    known before a listing shows it: a pass over every source finds it, then the pass of the
    shard that owns the source decides (its caps count its own sources, its breaker is its own)."""
    now = datetime.now(tz=UTC)
    async with api_client(settings, token, host) as client:
        if options.shard is None:
            return await run_pass(client, configs, journal, options, now=now)
        found = await run_pass(
            client, configs, journal, dataclasses.replace(options, shard=None), now=now
        )
        owner = _owner(found.sighting, options.shard)
        if owner is None:
            return found
        return await run_pass(
            client, configs, journal, dataclasses.replace(options, shard=owner), now=now
        )


def _journal_row(journal: MoveJournal, run: str, sighting: Sighting | None) -> MoveRecord | None:
    """The run's journal row: by the id the listing showed, else `run` as an id, else as the
    name of one moved run."""
    record = journal.get(run if sighting is None else sighting.run.id)
    if record is not None or sighting is not None:
        return record
    named = journal.named(run)
    if len(named) > 1:
        ids = ", ".join(r.source_run_id for r in named)
        raise UsageError(f"RUN {run!r} names {len(named)} moved runs ({ids}); give the run's id")
    return named[0] if named else None


def _decision(result: SweepResult, sighting: Sighting | None, only: Source | None) -> Decision:
    if sighting is None:
        return Decision(verdict=Verdict.NOT_LISTED, summary=_not_listed(result, only))
    run = sighting.run
    if not sighting.stuck:
        summary = f"not stuck: listed as {run.status}, only CREATED runs move"
        if run.status == RunStatus.CREATED:
            stuck_at = run.created_datetime() + timedelta(minutes=sighting.threshold_minutes)
            summary = (
                f"not stuck yet: {sighting.age_minutes:g} min old, the threshold is "
                f"{sighting.threshold_minutes} min; stuck from {utc_time(stuck_at)}"
            )
        return Decision(verdict=Verdict.NOT_STUCK, summary=summary)
    planned = next((m for m in result.plan.moves if m.run.id == run.id), None)
    if planned is not None:
        return Decision(
            verdict=Verdict.MOVE,
            summary=f"moves to {planned.destination_workspace_fqn} by config {planned.config.id}",
            config_id=planned.config.id,
            destination_workspace_fqn=planned.destination_workspace_fqn,
            reason=planned.reason,
            action=result.decisions.get(run.id),
            manifest_patch=planned.config.manifest_patch,
        )
    held = next((h for h in result.plan.held if h.move.run.id == run.id), None)
    if held is not None:
        return Decision(
            verdict=Verdict.HELD,
            summary=f"held this pass ({held.hold}): {held.detail}",
            config_id=held.move.config.id,
            destination_workspace_fqn=held.move.destination_workspace_fqn,
            reason=held.move.reason,
            hold=str(held.hold),
            detail=held.detail,
            manifest_patch=held.move.config.manifest_patch,
        )
    why = [w for w in result.plan.warnings if run.id in w]
    return Decision(
        verdict=Verdict.NOT_PLANNED,
        summary="stuck, but the plan skipped it: " + ("; ".join(why) or "no reason given"),
    )


def _not_listed(result: SweepResult, only: Source | None) -> str:
    report = result.report
    if report.sources_total == 0:
        return no_moves(result, only)  # no source to look in: the sweep's own words say why
    text = (
        f"no listing of CREATED runs shows it ({report.sources_scanned} of "
        f"{report.sources_total} covered sources listed): it is not in CREATED, no config "
        "covers its job, or the id or name is wrong"
    )
    if report.sources_failed:
        text += f"; {report.sources_failed} could not be listed, it may be in one"
    if report.sources_missing:
        text += f"; {report.sources_missing} not found in their cluster"
    return text


def _guard_rails(settings: Settings, result: SweepResult, sighting: Sighting | None) -> GuardRails:
    limits, facts = settings.limits, result.facts
    labels = None if sighting is None else facts.labels.get(sighting.run.id)
    moved: dict[str, datetime] = {}
    destinations: set[str] = set()
    if sighting is not None:
        moved = facts.other_moves(sighting.application.id, sighting.run.id)
        destinations = {c.destination_workspace_id for c in sighting.chain}
    return GuardRails(
        max_moves=limits.max_moves,
        max_moves_per_source=limits.per_source,
        max_moves_per_destination=limits.per_destination,
        cooldown_minutes=limits.cooldown_minutes,
        max_hops=limits.max_hops,
        breaker_open=facts.breaker,
        opted_out=None if labels is None else opted_out(labels),
        hops=None if labels is None else visited(labels),
        moved_recently=moved,
        saturated={w: why for w, why in facts.saturated.items() if w in destinations},
    )


def _shard_view(settings: Settings, result: SweepResult) -> ShardView | None:
    shard = settings.shard
    if shard is None:
        return None
    owner = _owner(result.sighting, shard)
    return ShardView(
        count=shard.count,
        this=shard.index,
        owner=None if owner is None else owner.index,
        owned_by_this=None if owner is None else owner == shard,
    )


def _explanation(
    run: str,
    settings: Settings,
    result: SweepResult,
    record: MoveRecord | None,
    only: Source | None,
) -> Explanation:
    sighting = result.sighting
    listed = None
    if sighting is not None:
        listed = Listed(
            run_id=sighting.run.id,
            run_name=sighting.run.name,
            status=sighting.run.status,
            job=sighting.application.name,
            job_id=sighting.application.id,
            source=str(sighting.group.source),
            created_at=sighting.run.created_datetime(),
            age_minutes=sighting.age_minutes,
            threshold_minutes=sighting.threshold_minutes,
            stuck=sighting.stuck,
        )
    run_id = sighting.run.id if sighting else record.source_run_id if record else None
    return Explanation(
        run=run,
        run_id=run_id,
        sweep_enabled=settings.job_fallback_enabled,
        listed=listed,
        configs=[] if sighting is None else sighting.group.configs,
        chain=[] if sighting is None else [c.id for c in sighting.chain],
        chain_reason=sighting.reason if sighting and sighting.chain else None,
        decision=_decision(result, sighting, only),
        guard_rails=_guard_rails(settings, result, sighting),
        shard=_shard_view(settings, result),
        journal=record,
        would_resume=any(r.source_run_id == run_id for r in result.resumes),
        sources_failed=sorted(set(result.source_errors)),
    )


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _render_text(e: Explanation) -> None:
    listed, d = e.listed, e.decision
    if listed is None:
        echo(f"run     {e.run}")
    else:
        echo(f"run     {listed.run_name} ({listed.run_id})")
        echo(f"job     {listed.job} ({listed.job_id})")
        echo(f"source  {listed.source}")
        echo(
            f"status  {listed.status} since {utc_time(listed.created_at)}: "
            f"{listed.age_minutes:g} min, threshold {listed.threshold_minutes} min: "
            f"{'stuck' if listed.stuck else 'not stuck'}"
        )
        echo(f"\nconfigs covering {listed.source}, in chain order:")
        print_table(
            ["id", "name", "job", "priority", "threshold", "destination", "governs"],
            [
                [
                    c.id,
                    c.name,
                    c.source_job_id or "(every job)",
                    c.priority,
                    c.stuck_threshold_minutes,
                    c.destination_workspace_fqn,
                    f"yes, #{e.chain.index(c.id) + 1}" if c.id in e.chain else "no",
                ]
                for c in e.configs
            ],
            empty="(none)",
        )
        if e.chain_reason:
            echo(f"its job is governed by {e.chain_reason}")
    echo(f"\ndecision: {d.summary}")
    if d.reason is not None and d.reason != e.chain_reason:  # it passed over configs
        echo(f"  why this config: {d.reason}")
    if d.action is not None:
        echo(f"  a real pass: {d.action}")
    if d.manifest_patch is not None:
        echo(f"  patch applied to the copy's manifest: {d.manifest_patch}")
    if not e.sweep_enabled:
        echo("  sweeping is disabled (JOB_FALLBACK_ENABLED=false): a real sweep moves nothing")
    for failure in e.sources_failed:
        echo(f"  a source could not be listed: {failure}")
    if listed is not None:  # the guard rails weigh only on a run the sweep lists
        _render_guard_rails(e.guard_rails, e.shard)
    _render_journal(e)


def _render_guard_rails(g: GuardRails, shard: ShardView | None) -> None:
    caps = f"{_or_dash(g.max_moves)} in all, {_or_dash(g.max_moves_per_source)} per source, "
    caps += f"{_or_dash(g.max_moves_per_destination)} per destination"
    echo("\nguard rails:")
    echo(f"  caps per pass: {caps}")
    echo(f"  circuit breaker: {'open: ' + g.breaker_open if g.breaker_open else 'closed'}")
    if g.moved_recently:
        when = ", ".join(f"{run} at {utc_time(t)}" for run, t in sorted(g.moved_recently.items()))
        echo(f"  cooldown ({g.cooldown_minutes} min): runs of the job moved: {when}")
    else:
        echo(f"  cooldown ({g.cooldown_minutes} min): no other run of the job moved in it")
    if g.opted_out is None or g.hops is None:
        echo("  opt-out and hops: not read (labels are read only for a stuck run)")
    else:
        echo(f"  opted out by label: {'yes' if g.opted_out else 'no'}")
        left = f" (left {', '.join(g.hops)})" if g.hops else ""
        echo(f"  hops: {len(g.hops)} of at most {g.max_hops}{left}")
    saturated = "; ".join(f"{w}: {why}" for w, why in sorted(g.saturated.items()))
    echo(f"  saturated destinations of its chain: {saturated or 'none'}")
    if shard is None:
        echo("  shard: not sharded")
    elif shard.owner is None:
        echo(f"  shard: this is {shard.this}/{shard.count}; the run's source is not known")
    else:
        whose = "this one" if shard.owned_by_this else f"not this one ({shard.this})"
        echo(f"  shard: {shard.owner}/{shard.count} sweeps its source, {whose}")


def _render_journal(e: Explanation) -> None:
    r = e.journal
    if r is None:
        echo("\njournal: no move recorded for this run")
        return
    echo(f"\njournal: move {r.state.value}, updated {utc_time(r.updated_at)}")
    echo(f"  destination {r.destination_workspace_fqn}, run {_or_dash(r.destination_run_name)}")
    echo(f"  attempts {r.attempts}, error {_or_dash(r.error)}")
    if r.next_attempt_at is not None:
        echo(f"  next attempt {utc_time(r.next_attempt_at)}")
    if r.manifest_patch is not None:
        echo(f"  patch applied: {r.manifest_patch}")
    if e.would_resume:
        echo("  a real pass would resume this unfinished move now")


def _run_argument(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("is empty; give a run's id or name")
    return value.strip()


def explain(
    run: Annotated[
        str, typer.Argument(metavar="RUN", callback=_run_argument, help="The run's id or name.")
    ],
    source: Annotated[Source | None, source_option("Look only in this source.")] = None,
    shard: Annotated[
        Shard | None,
        shard_option(
            "As the sweep of this shard sees it (env JOB_FALLBACK_SHARD_COUNT and "
            "JOB_COMPLETION_INDEX; default: not sharded)."
        ),
    ] = None,
    output: OutputOption = Output.text,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Why a run was (not) moved: a sweep's decision now and its journal.

    A dry run of the sweep's own pass, focused on RUN, with the
    sweep's settings and TF_SERVICE_API_TOKEN: the configs covering
    its source, the one that wins and why, its age against the
    threshold, caps, breaker, cooldown, opt-out, saturated
    destinations, hops, shard; then its move in the journal.
    Writes nothing.

    Exit codes: 0 explained (whatever the decision), 1 found nowhere
    (no listing, no journal row), 2 bad usage or settings, 3 could
    not run (store or API unreachable, token refused).
    """
    settings = settings_from(
        for_sweep=True, tfy_host=host, database_url=database_url, **shard_settings(shard)
    )
    token = settings.service_token
    if token is None:
        raise fail("TF_SERVICE_API_TOKEN is not set; set it to the token the sweep uses", 2)
    url = require_host(settings)
    options = sweep_options(settings, dry_run=True, source=source, focus=run)
    with opened_store(settings) as store:
        configs = store.configs.list(enabled_only=True)
        result = asyncio.run(_dry_run(settings, token, url, configs, store.journal, options))
        if result.exit_code == 3:
            why = "; ".join(sorted(set(result.source_errors))) or "the API refused the token"
            raise fail(f"could not list the sources: {why}", 3)
        record = _journal_row(store.journal, run, result.sighting)
    explanation = _explanation(run, settings, result, record, source)
    if output == Output.json:
        print_json(explanation)
    else:
        _render_text(explanation)
    if explanation.run_id is None:
        raise typer.Exit(1)
