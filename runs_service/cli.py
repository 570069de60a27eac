"""Flask commands: demo data (and, through extensions, db and openapi)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from runs_service.demo_data import generate_demo_runs
from runs_service.services.loading import database_is_empty, load_demo_run


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
    if not database_is_empty():
        if if_empty:
            click.echo("The database already has runs; demo data not loaded.")
            return
        if not force:
            raise click.ClickException(
                "The database already has runs; pass --force to add demo runs anyway."
            )
    runs = generate_demo_runs(count=count, seed=seed)
    with click.progressbar(runs, length=count, label="Loading demo runs") as bar:
        for demo_run in bar:
            load_demo_run(demo_run)
    click.echo(f"Loaded {count} demo runs.")


def register_commands(app: Flask) -> None:
    app.cli.add_command(demo_data_command)
