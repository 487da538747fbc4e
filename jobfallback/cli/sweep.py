"""`jobfallback sweep` and `jobfallback history`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import annotated_types
import typer

from jobfallback.cli.common import (
    DatabaseUrlOption,
    HostOption,
    Output,
    OutputOption,
    api_client,
    choice,
    choices,
    echo,
    exit_on_error,
    one_of,
    opened_store,
    print_json,
    print_table,
    require_host,
    settings_from,
    whole_number,
)
from jobfallback.logs import event, get_logger, json_lines, setup_logging
from jobfallback.models import MoveState, PlannedMove, SweepReport
from jobfallback.move import MoveOutcome, MovePolicy
from jobfallback.plan import Source
from jobfallback.publish import SweepFacts, publish
from jobfallback.settings import Settings
from jobfallback.shard import Shard
from jobfallback.sweep import (
    STOPPED_EXIT_CODE,
    Progress,
    Stop,
    SweepOptions,
    SweepResult,
    no_progress,
    run_pass,
)
from jobfallback.times import utc_time

log = get_logger("cli")


class LogFormat(StrEnum):
    auto = "auto"
    json = "json"
    text = "text"


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        **choice(LogFormat),
        help="auto (text on a terminal, else JSON), json or text.",
    ),
]
SweepOutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        **choice(Output),
        help="text for people, json for scripts; unset: the text table on a terminal, "
        "nothing otherwise (the logs carry the events).",
    ),
]


def _setting_option(name: str, flag: str, help: str, metavar: str = "N") -> Any:
    """A flag that overrides the setting `name` for this run: its help names the variable and
    the setting's default, and its range is the setting's, so neither is written twice. The
    range is checked here: typer's own check words its error as pydantic does."""
    field = Settings.model_fields[name]
    low: tuple[float, bool] | None = None  # (bound, whether the bound itself is allowed)
    high: float | None = None
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = (float(rule.ge), True)  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Gt):
            low = (float(rule.gt), False)  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Le):
            high = float(rule.le)  # type: ignore[arg-type]
    span = _span(low, high)

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        too_low = low is not None and (value < low[0] if low[1] else value <= low[0])
        if too_low or (high is not None and value > high):
            raise typer.BadParameter(f"{value:g} is not in the range {span}")
        return value

    return typer.Option(
        flag,
        metavar=f"{metavar} [{span}]",
        help=f"{help} (env {name.upper()}; default {field.default:g}).",
        callback=check,
    )


def _span(low: tuple[float, bool] | None, high: float | None) -> str:
    """A range as click writes it: x>=0, 1<=x<=10, 0<x<=1."""
    if low is None:
        return f"x<={high:g}"
    sign = "<=" if low[1] else "<"
    if high is None:
        return f"x{sign.replace('<', '>')}{low[0]:g}"
    return f"{low[0]:g}{sign}x<={high:g}"


def _shard(value: str) -> Shard:
    try:
        return Shard.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _source(value: str) -> Source:
    try:
        return Source.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def shard_option(help: str) -> Any:
    """--shard INDEX/COUNT, as `sweep` and `explain` take it."""
    return typer.Option("--shard", metavar="INDEX/COUNT", parser=_shard, help=help)


def source_option(help: str) -> Any:
    """--source CLUSTER/WORKSPACE, as `sweep` and `explain` take it."""
    return typer.Option("--source", metavar="CLUSTER/WORKSPACE", parser=_source, help=help)


def shard_settings(shard: Shard | None) -> dict[str, int | None]:
    """The settings --shard overrides: it stands for both variables, so neither half of the
    environment's is mixed in."""
    return {
        "job_fallback_shard_count": None if shard is None else shard.count,
        "job_completion_index": None if shard is None else shard.index,
    }


@contextmanager
def _progress_display(enabled: bool) -> Iterator[Progress]:
    """A live progress bar on a terminal; nothing otherwise (logs carry the events)."""
    if not enabled:
        yield no_progress
        return
    from rich.progress import Progress as RichProgress  # imported lazily: keeps --help fast

    with RichProgress(transient=True, console=None) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield update


def _move_row(
    planned: PlannedMove, outcome: MoveOutcome | None, decision: str | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sourceRun": planned.run.name,
        "sourceRunId": planned.run.id,
        "job": planned.application.name,
        "jobId": planned.application.id,
        "ageMinutes": planned.age_minutes,
        "thresholdMinutes": planned.threshold_minutes,
        "configId": planned.config.id,
        "reason": planned.reason,
        "destinationWorkspaceFqn": planned.destination_workspace_fqn,
    }
    if planned.config.manifest_patch:
        row["manifestPatch"] = planned.config.manifest_patch
    if outcome is not None:
        row["outcome"] = outcome.outcome.value
        row["detail"] = outcome.detail
    if decision is not None:
        row["decision"] = decision
    return row


_ADD_CONFIG = "add one with `jobfallback configs add ...` (or enable one: `configs enable ID`)"


def no_moves(result: SweepResult, only: Source | None) -> str:
    """What an empty table means: "nothing stuck" only when every source was scanned."""
    r = result.report
    if r.sources_total == 0:
        if r.configs_total == 0:
            return f"No run checked: no configs enabled; {_ADD_CONFIG}."
        if r.configs_skipped == r.configs_total:
            return (
                f"No run checked: every config skipped ({r.configs_skipped} of "
                f"{r.configs_total}; the warnings say why, `jobfallback configs validate` checks)."
            )
        if only is not None:
            return f"No run checked: no usable config has the source {only} (--source)."
        return "No run checked: no source to scan."
    if r.sources_missing and not r.sources_scanned and not r.sources_failed:
        return (
            f"No run checked: {r.sources_missing} of {r.sources_total} source workspaces not "
            "found in their cluster (the warnings name the configs; "
            "`jobfallback configs validate` checks them)."
        )
    if r.sources_failed:
        reasons = sorted(set(result.source_errors))
        why = reasons[0] if len(reasons) == 1 else "; ".join(reasons[:3])
        if r.sources_failed == r.sources_total:
            return f"No run checked: {r.sources_failed} of {r.sources_total} sources failed: {why}"
        return (
            f"No stuck run in the {r.sources_scanned} of {r.sources_total} sources scanned; "
            f"{r.sources_failed} failed: {why}"
        )
    if r.sources_missing:
        return (
            f"No stuck run in the {r.sources_scanned} of {r.sources_total} sources scanned; "
            f"{r.sources_missing} not found in their cluster (the warnings name the configs)."
        )
    return "Nothing stuck: no run to move."


def _render(result: SweepResult, output: Output, only: Source | None = None) -> None:
    outcomes = {o.source_run_id: o for o in result.outcomes}
    rows = [
        _move_row(m, outcomes.get(m.run.id), result.decisions.get(m.run.id))
        for m in result.plan.moves
    ]
    if output == Output.json:
        print_json(
            {
                "report": result.report,
                "moves": rows,
                # Every stuck run not moved, with why (`deferred`: those over a cap).
                "held": [
                    {**_move_row(h.move, None), "hold": h.hold.value, "detail": h.detail}
                    for h in result.plan.held
                ],
                "deferred": [_move_row(m, None) for m in result.plan.deferred],
                "resumes": result.resumes,
            }
        )
        return
    headers = ["source run", "job", "age (min)", "config", "why", "destination"]
    keys = ["sourceRun", "job", "ageMinutes", "configId", "reason", "destinationWorkspaceFqn"]
    if result.report.dry_run:
        headers.append("decision")
        keys.append("decision")
    else:
        headers += ["outcome", "detail"]
        keys += ["outcome", "detail"]
    print_table(headers, [[r.get(k) for k in keys] for r in rows], empty=no_moves(result, only))
    if result.plan.held:
        echo(f"\nheld {len(result.plan.held)} stuck run(s) this pass:")
        print_table(
            ["source run", "job", "age (min)", "hold", "why"],
            [
                [
                    h.move.run.name,
                    h.move.application.name,
                    h.move.age_minutes,
                    h.hold.value,
                    h.detail,
                ]
                for h in result.plan.held
            ],
            empty="",
        )
    if result.resumes:
        verb = "would resume" if result.report.dry_run else "resumed"
        echo(f"\n{verb} {len(result.resumes)} unfinished move(s) of earlier passes:")
        resumed_headers = ["source run", "job", "destination", "was"]
        if not result.report.dry_run:
            resumed_headers += ["outcome", "detail"]  # why a resumed move failed or was parked
        resumed_rows = []
        for record in result.resumes:
            row: list[Any] = [
                record.source_run_name,
                record.source_application_name,
                record.destination_workspace_fqn,
                record.state.value,
            ]
            if not result.report.dry_run:
                outcome = outcomes.get(record.source_run_id)
                row += [None, None] if outcome is None else [outcome.outcome.value, outcome.detail]
            resumed_rows.append(row)
        print_table(resumed_headers, resumed_rows, empty="")
    r = result.report
    echo(
        f"\n{'DRY-RUN: ' if r.dry_run else ''}sources {r.sources_scanned}/{r.sources_total} scanned"
        f" ({r.sources_failed} failed)"
        f"{f' ({r.sources_refused} refused)' if r.sources_refused else ''}"
        f"{f' ({r.sources_missing} missing)' if r.sources_missing else ''}"
        f"{f', configs skipped {r.configs_skipped}/{r.configs_total}' if r.configs_skipped else ''}"
        f", jobs {r.jobs_listed}, runs seen {r.runs_seen}"
        f"{f' ({r.unreadable} unreadable)' if r.unreadable else ''}"
        f", stuck {r.stuck}, planned {r.planned}, deferred {r.deferred}, moved {r.moved},"
        f" skipped {r.skipped}, waiting {r.waiting}, failed {r.failed}, parked {r.parked},"
        f" flagged {r.flagged}, API calls {r.api_calls}, {r.duration_seconds:.2f}s"
    )
    guard_rails = _guard_rails(r)
    if guard_rails:
        echo(guard_rails)


def _guard_rails(r: SweepReport) -> str:
    """What held this pass back, and which shard it took: said only when it happened, as the
    line above is already long."""
    parts = [f"shard {r.shard}"] if r.shard else []
    held = [f"{reason} {n}" for reason, n in sorted(r.held.items()) if n]
    if held:
        parts.append(f"held: {', '.join(held)}")
    if r.destinations_saturated:
        parts.append(f"destinations saturated {r.destinations_saturated}")
    if r.breaker_open:
        why = f" ({r.breaker_reason})" if r.breaker_reason else ""
        parts.append(f"circuit breaker open{why}: no new move started")
    return "; ".join(parts)


def _skip(output: Output | None, level: int, why: str, message: str) -> typer.Exit:
    """A sweep that does nothing on purpose: logged, told to scripts, exit 0."""
    event(log, level, "sweep.skipped", message, reason=why)
    if output == Output.json:
        print_json({"skipped": message})
    return typer.Exit(0)


_LOCK_HELD = "another sweep holds the lock; exiting"


def _finished(code: int, result: SweepResult | None) -> None:
    """The sweep's last line, whatever its exit: its exit code and, after a pass, the report;
    at the level the exit code calls for (never info for a sweep that did not do its work)."""
    level = {0: logging.INFO, 1: logging.WARNING, STOPPED_EXIT_CODE: logging.WARNING}.get(
        code, logging.ERROR
    )
    fields: dict[str, Any] = {"exit_code": code}
    if result is not None:
        fields.update(result.report.model_dump(exclude={"warnings"}))
        if result.stopped is not None:
            fields["stopped_by"] = result.stopped
    event(log, level, "sweep.finished", "sweep finished", **fields)


@contextmanager
def _stopping_on_sigterm(stop: Stop) -> Iterator[threading.Event]:
    """SIGTERM (the CronJob's deadline, a node drain) asks the pass to stop, like at its
    deadline, instead of killing the process: it reports, publishes and exits 143. Set the
    event it yields once the summary is out: a SIGTERM after it changes nothing, says nothing."""
    summary_out = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield summary_out  # only the main thread may set a signal handler (a test runner's)
        return

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not stop.requested and not summary_out.is_set():
            event(
                log,
                logging.WARNING,
                "sweep.stopping",
                "asked to stop: no new step starts; the pass reports what it did",
                signal=name,
            )
        stop.request(name)

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield summary_out
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(
    settings: Settings,
    token: str,
    host: str,
    options: SweepOptions,
    progress: Progress,
    facts: SweepFacts,
) -> SweepResult | None:
    """The pass's result, or None when another sweep holds the lock."""
    with opened_store(settings) as store:
        configs = store.configs.list(enabled_only=True)
        facts.configs = configs

        async def run() -> SweepResult:
            # A dry run only reads the journal, to show what a real pass would resume.
            async with api_client(settings, token, host) as client:
                facts.api = client
                return await run_pass(
                    client,
                    configs,
                    store.journal,
                    options,
                    now=datetime.now(tz=UTC),
                    progress=progress,
                )

        if options.dry_run:
            return asyncio.run(run())
        with store.sweep_lock(options.shard) as lock:
            if not lock:
                return None
            options.guard = lock.check
            return asyncio.run(run())


_ENABLED_BY_DEFAULT = Settings.model_fields["job_fallback_enabled"].default


def sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only: print what would move; write nothing.")
    ] = False,
    threshold_minutes: Annotated[
        int | None,
        _setting_option(
            "job_fallback_stuck_threshold_minutes",
            "--threshold-minutes",
            "Stuck threshold in minutes",
        ),
    ] = None,
    max_moves: Annotated[
        int | None,
        _setting_option(
            "job_fallback_max_moves",
            "--max-moves",
            "Start at most N moves this pass, oldest stuck runs first; the rest wait for the next",
        ),
    ] = None,
    max_moves_per_destination: Annotated[
        int | None,
        _setting_option(
            "job_fallback_max_moves_per_destination",
            "--max-moves-per-destination",
            "Start at most N moves into one destination workspace this pass",
        ),
    ] = None,
    max_moves_per_source: Annotated[
        int | None,
        _setting_option(
            "job_fallback_max_moves_per_source",
            "--max-moves-per-source",
            "Start at most N moves out of one source workspace this pass",
        ),
    ] = None,
    cooldown_minutes: Annotated[
        int | None,
        _setting_option(
            "job_fallback_cooldown_minutes",
            "--cooldown-minutes",
            "Leave a job alone this many minutes after one of its runs was moved",
        ),
    ] = None,
    max_hops: Annotated[
        int | None,
        _setting_option(
            "job_fallback_max_hops",
            "--max-hops",
            "A run moves on along its fallback chain until it has moved this many times",
        ),
    ] = None,
    breaker_failure_ratio: Annotated[
        float | None,
        _setting_option(
            "job_fallback_breaker_failure_ratio",
            "--breaker-failure-ratio",
            "Open the circuit breaker when this share of a pass's moves failed",
            metavar="RATIO",
        ),
    ] = None,
    breaker_min_moves: Annotated[
        int | None,
        _setting_option(
            "job_fallback_breaker_min_moves",
            "--breaker-min-moves",
            "The circuit breaker judges a pass's failure share once this many of its moves "
            "finished",
        ),
    ] = None,
    breaker_failed_passes: Annotated[
        int | None,
        _setting_option(
            "job_fallback_breaker_failed_passes",
            "--breaker-failed-passes",
            "Open the circuit breaker after this many passes in a row with a failed move",
        ),
    ] = None,
    breaker_quiet_minutes: Annotated[
        int | None,
        _setting_option(
            "job_fallback_breaker_quiet_minutes",
            "--breaker-quiet-minutes",
            "Close the circuit breaker after this many minutes without a failed move",
        ),
    ] = None,
    shard: Annotated[
        Shard | None,
        shard_option(
            "Take only this shard of the source workspaces, e.g. 0/4 (env "
            "JOB_FALLBACK_SHARD_COUNT, the index from JOB_COMPLETION_INDEX; default: all)."
        ),
    ] = None,
    source: Annotated[Source | None, source_option("Only this source.")] = None,
    concurrency: Annotated[
        int | None,
        _setting_option("job_fallback_concurrency", "--concurrency", "API requests in flight"),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option(
            "--enabled/--disabled",
            help="Allow or forbid moves for this run (env JOB_FALLBACK_ENABLED; default "
            f"{'enabled' if _ENABLED_BY_DEFAULT else 'disabled'}).",
        ),
    ] = None,
    http_timeout: Annotated[
        float | None,
        _setting_option(
            "job_fallback_http_timeout_seconds",
            "--http-timeout",
            "Seconds to wait for an API answer",
            metavar="SECONDS",
        ),
    ] = None,
    pushgateway_url: Annotated[
        str | None,
        typer.Option(
            "--pushgateway-url",
            metavar="URL",
            help="Push this sweep's metrics to this Pushgateway "
            "(env JOB_FALLBACK_PUSHGATEWAY_URL).",
        ),
    ] = None,
    metrics_file: Annotated[
        str | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH.prom",
            help="Write this sweep's metrics for node-exporter's textfile collector "
            "(env JOB_FALLBACK_METRICS_FILE).",
        ),
    ] = None,
    output: SweepOutputOption = None,
    log_format: LogFormatOption = LogFormat.auto,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run one pass: move runs stuck in CREATED to their fallback destination, then exit.

    Exit codes: 0 done (also: disabled, no token, lock held, nothing stuck), 1 some moves or
    sources failed, 2 bad usage or settings, 3 could not run (store or API unreachable, token
    refused), 143 stopped by SIGTERM (what it did is reported; the next pass resumes the rest).
    """
    setup_logging(log_format.value)
    settings = settings_from(
        for_sweep=True,
        tfy_host=host,
        database_url=database_url,
        job_fallback_stuck_threshold_minutes=threshold_minutes,
        job_fallback_concurrency=concurrency,
        job_fallback_enabled=enabled,
        job_fallback_http_timeout_seconds=http_timeout,
        job_fallback_pushgateway_url=pushgateway_url,
        job_fallback_metrics_file=metrics_file,
        job_fallback_max_moves=max_moves,
        job_fallback_max_moves_per_destination=max_moves_per_destination,
        job_fallback_max_moves_per_source=max_moves_per_source,
        job_fallback_cooldown_minutes=cooldown_minutes,
        job_fallback_max_hops=max_hops,
        job_fallback_breaker_failure_ratio=breaker_failure_ratio,
        job_fallback_breaker_min_moves=breaker_min_moves,
        job_fallback_breaker_failed_passes=breaker_failed_passes,
        job_fallback_breaker_quiet_minutes=breaker_quiet_minutes,
        **shard_settings(shard),
    )
    event(
        log,
        logging.INFO,
        "sweep.started",
        "sweep started",
        dry_run=dry_run,
        shard=None if settings.shard is None else str(settings.shard),
        **{name.lower(): value for name, value in settings.masked().items()},
    )
    # Every exit from here on ends in `sweep.finished` with its exit code, which goes into the
    # metrics; the metrics and the webhook go out after the report and that last log line.
    facts = SweepFacts.of(settings, dry_run=dry_run)
    stop = Stop()
    with _stopping_on_sigterm(stop) as summary_out:
        try:
            code = _sweep(settings, facts, stop, output, dry_run, source)
        except typer.Exit as done:
            code = done.exit_code
        except Exception:  # a bug: one event with its traceback, never a bare traceback
            event(
                log,
                logging.CRITICAL,
                "sweep.crashed",
                "the sweep failed unexpectedly",
                exc_info=True,
            )
            code = 1
        _finished(code, facts.result)
        summary_out.set()
        publish(settings, facts, exit_code=code)
    raise typer.Exit(code)


def sweep_options(settings: Settings, **given: Any) -> SweepOptions:
    """A pass's options as the settings make them, `given` (dry_run, source, focus, stop...)
    on top: the same as `jobfallback sweep` builds."""
    return SweepOptions(
        policy=MovePolicy.of(
            settle_seconds=settings.job_fallback_settle_seconds,
            max_attempts=settings.job_fallback_max_attempts,
            backoff_seconds=settings.job_fallback_retry_backoff_seconds,
        ),
        threshold_minutes=settings.job_fallback_stuck_threshold_minutes,
        limits=settings.limits,
        breaker=settings.breaker,
        shard=settings.shard,
        deadline_seconds=settings.job_fallback_pass_deadline_seconds,
        **given,
    )


def _sweep(
    settings: Settings,
    facts: SweepFacts,
    stop: Stop,
    output: Output | None,
    dry_run: bool,
    only: Source | None,
) -> int:
    """The sweep's work after its settings: its exit code (or a typer.Exit)."""
    if not dry_run and not settings.job_fallback_enabled:
        raise _skip(
            output,
            logging.INFO,
            "disabled",
            "sweeping is disabled (JOB_FALLBACK_ENABLED=false): nothing moved; "
            "`jobfallback sweep --dry-run` shows what would move",
        )
    token = settings.service_token
    if token is None:
        raise _skip(
            output,
            logging.WARNING,
            "no_token",
            "TF_SERVICE_API_TOKEN is not set: sweep skipped",
        )
    host = require_host(settings)
    options = sweep_options(settings, dry_run=dry_run, source=only, stop=stop)
    # A live bar only for a person: on a terminal, with text logs and no JSON output.
    show_progress = output != Output.json and not json_lines() and sys.stderr.isatty()
    with exit_on_error(), _progress_display(show_progress) as progress:
        result = _execute(settings, token, host, options, progress, facts)
    if result is None:
        facts.lock_held_by_other = True
        raise _skip(output, logging.INFO, "lock_held", _LOCK_HELD)
    facts.result = result
    # The table is for people: on a terminal, or when --output asks for it.
    shown = output if output is not None else Output.text if sys.stdout.isatty() else None
    if shown is not None:
        _render(result, shown, only)
    return result.exit_code


_COUNT_CAP = 10_000  # `history --state S` with none: the moves in other states, counted up to it


def history(
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            parser=whole_number("a whole number of moves, 1 or more", minimum=1),
            metavar="N",
            help="Newest N moves.",
        ),
    ] = 50,
    state: Annotated[
        MoveState | None,
        typer.Option(
            "--state",
            # The choices in the help: as the metavar they would not fit in 80 columns.
            parser=one_of(MoveState),
            metavar="STATE",
            help=f"Only moves in this state: {choices(MoveState, ', ')}.",
        ),
    ] = None,
    output: OutputOption = Output.text,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the move journal: what moved where, when, its state and any error."""
    others = 0
    with opened_store(settings_from(database_url=database_url)) as store:
        records = store.journal.history(limit=limit, states=None if state is None else (state,))
        if not records and state is not None and output != Output.json:
            others = len(store.journal.history(limit=_COUNT_CAP))
    if output == Output.json:
        print_json(records)
        return
    if state is None or not others:
        empty = "No moves recorded yet."
    else:
        counted = f"{others}+" if others >= _COUNT_CAP else str(others)
        empty = f"No moves in state {state.value} ({counted} moves in other states)."
    print_table(
        ["updated", "source run", "job", "destination", "dest run", "state", "error"],
        [
            [
                utc_time(r.updated_at),
                r.source_run_name,
                r.source_application_name,
                r.destination_workspace_fqn,
                r.destination_run_name,
                r.state.value,
                r.error,
            ]
            for r in records
        ],
        empty=empty,
    )
