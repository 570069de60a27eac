"""Flask commands: demo data, results-file import (and, through extensions, db and openapi)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from marshmallow import Schema

from runs_service.catalogue import MAX_METRICS_PER_BATCH, MAX_RUN_ID
from runs_service.demo_data import DemoRun, generate_demo_runs
from runs_service.errors import InvalidInput, RunNotFound, ServiceError
from runs_service.schemas.ingest import (
    ClientBatchSchema,
    MetricBatchSchema,
    ServerEvaluationBatchSchema,
)
from runs_service.schemas.runs import RunCreateSchema
from runs_service.services.backfill import (
    BackfillResult,
    backfill_from_path,
    backfill_results_file,
    results_files_in,
)
from runs_service.services.health import schema_problem
from runs_service.services.loading import database_is_empty, load_run, write_results_file
from runs_service.services.metric_summaries import refresh_all_metric_summaries
from runs_service.services.rollups import rebuild_rollups
from runs_service.services.summaries import refresh_all_summaries


def _require_schema() -> None:
    """Stop with one line when the database is missing or was never migrated."""
    problem = schema_problem()
    if problem is not None:
        raise click.ClickException(problem)


@click.command("demo-data")
@with_appcontext
@click.option("--count", default=60, show_default=True, help="How many runs to create.")
@click.option("--seed", default=42, show_default=True, help="Seed of the generator.")
@click.option("--force", is_flag=True, help="Add the runs even if the database has runs.")
@click.option(
    "--if-empty", is_flag=True, help="Do nothing (exit 0) when the database already has runs."
)
def demo_data_command(count: int, seed: int, force: bool, if_empty: bool) -> None:
    """Fill an empty database with a realistic mix of centralized and federated runs."""
    _require_schema()
    if not database_is_empty():
        if if_empty:
            click.echo("The database already has runs; demo data not loaded.")
            return
        if not force:
            raise click.ClickException(
                "The database already has runs; pass --force to add demo runs anyway."
            )
    results_dir = current_app.config["RUNS_RESULTS_DIR"]
    results_files = []
    runs = generate_demo_runs(count=count, seed=seed)
    with click.progressbar(runs, length=count, label="Loading demo runs") as bar:
        for demo_run in bar:
            run_id = load_demo_run(demo_run)
            if demo_run.evaluations_in_results_file:
                results_files.append(write_results_file(results_dir, run_id, demo_run.evaluations))
    click.echo(f"Loaded {count} demo runs.")
    for path in results_files:
        click.echo(f"Wrote {path} (server evaluations not imported yet: see the backfill).")


def _validated(schema: Schema, body: dict) -> dict:
    errors = schema.validate(body)
    if errors:
        raise InvalidInput("Demo data does not pass the API's validation.", errors)
    return schema.load(body)


def load_demo_run(demo_run: DemoRun) -> int:
    """Load a demo run's request bodies with the API's schemas, then write it; its id.

    Server evaluations kept in a results file only are left for the backfill.
    """
    fields = _validated(RunCreateSchema(), demo_run.run)
    clients = evaluations = []
    if demo_run.clients:
        clients = _validated(ClientBatchSchema(), {"clients": demo_run.clients})["clients"]
    metrics = []
    for start in range(0, len(demo_run.metrics), MAX_METRICS_PER_BATCH):
        chunk = {"metrics": demo_run.metrics[start : start + MAX_METRICS_PER_BATCH]}
        metrics += _validated(MetricBatchSchema(), chunk)["metrics"]
    if demo_run.evaluations:
        body = {"evaluations": demo_run.evaluations}
        evaluations = _validated(ServerEvaluationBatchSchema(), body)["evaluations"]
    if demo_run.evaluations_in_results_file:
        evaluations = []
    return load_run(fields, clients, metrics, evaluations)


def _summary(result: BackfillResult) -> str:
    counts = f"{result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged"
    return f"{result.message.rstrip('.')} ({counts})."


@click.command("import-results")
@with_appcontext
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option(
    "--run-id", type=click.IntRange(1, MAX_RUN_ID), help="The run FILE belongs to (file mode)."
)
@click.option(
    "--directory",
    type=click.Path(exists=True, file_okay=False, readable=True),
    help="Import every results_{id}.json in this directory whose run exists.",
)
@click.option("--dry-run", is_flag=True, help="Validate and report without writing.")
def import_results_command(
    file: str | None, run_id: int | None, directory: str | None, dry_run: bool
) -> None:
    """Import server evaluations from FILE --run-id N, or from every file in --directory DIR."""
    _require_schema()
    max_bytes = current_app.config["RUNS_MAX_RESULTS_FILE_BYTES"]
    if directory is not None:
        if file is not None or run_id is not None:
            raise click.UsageError("--directory imports by file name; give no FILE or --run-id.")
        _import_directory(directory, max_bytes, dry_run)
        return
    if file is None or run_id is None:
        raise click.UsageError("Give FILE with --run-id N, or --directory DIR.")
    try:
        result = backfill_from_path(run_id, file, max_bytes, dry_run=dry_run)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Run {run_id}: {_summary(result)}")


def _import_directory(directory: str, max_bytes: int, dry_run: bool) -> None:
    files = results_files_in(directory)
    imported: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    with click.progressbar(files, label="Importing results files") as bar:
        for run_id, name in bar:
            try:
                result = backfill_results_file(run_id, directory, max_bytes, dry_run=dry_run)
            except RunNotFound:
                skipped.append(f"{name}: run {run_id} does not exist")
            except ServiceError as error:
                failed.append(f"{name}: {error.message}")
            else:
                imported.append(f"{name}: {_summary(result)}")
    for line in imported:
        click.echo(line)
    for line in skipped:
        click.echo(f"skipped {line}")
    for line in failed:
        click.echo(f"failed {line}", err=True)
    verb = "Validated" if dry_run else "Imported"
    click.echo(
        f"{verb} {len(imported)} of {len(files)} results files; "
        f"{len(skipped)} skipped (no run), {len(failed)} failed."
    )
    if failed:
        raise click.exceptions.Exit(1)


@click.command("refresh-summaries")
@with_appcontext
def refresh_summaries_command() -> None:
    """Recompute every run's stored summaries from its data (after a restore, say).

    Series summaries and their blocks are compared with a recomputation and only the
    wrong ones rewritten.
    """
    _require_schema()
    _, rewritten, blocks = refresh_all_metric_summaries()
    count = refresh_all_summaries()
    rollup_rows = rebuild_rollups()
    click.echo(
        f"Refreshed the summaries of {count} runs; {rewritten} series summaries rewritten; "
        f"{blocks} series blocks rewritten; {rollup_rows} analytics roll-up rows rewritten."
    )


@click.command("refresh-rollups")
@with_appcontext
def refresh_rollups_command() -> None:
    """Rebuild the analytics roll-ups from the runs and their summaries.

    Only wrong rows are rewritten: on correct roll-ups nothing changes.
    """
    _require_schema()
    click.echo(f"{rebuild_rollups()} analytics roll-up rows rewritten.")


def register_commands(app: Flask) -> None:
    app.cli.add_command(demo_data_command)
    app.cli.add_command(import_results_command)
    app.cli.add_command(refresh_summaries_command)
    app.cli.add_command(refresh_rollups_command)
