"""Alembic environment: migrates the database of the Flask application in context."""

import logging
from logging.config import fileConfig

import click
from alembic import context
from flask import current_app
from sqlalchemy.exc import OperationalError

from runs_service.errors import database_problem
from runs_service.models.types import include_object_for

config = context.config
# Keep the application's loggers (and pytest's caplog) alive while migrating.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def _database():
    return current_app.extensions["migrate"].db


def _engine():
    return _database().engine


config.set_main_option(
    "sqlalchemy.url", _engine().url.render_as_string(hide_password=False).replace("%", "%%")
)


def _connection_problem(error: OperationalError) -> str:
    problem = database_problem(error)
    if problem is not None:
        return problem
    first_line = str(getattr(error, "orig", error)).strip().splitlines()[0]
    return f"Cannot reach the database of RUNS_DATABASE_URL: {first_line}"


def run_migrations_offline():
    """Emit SQL to stdout instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=_database().metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on a connection of the application's engine."""

    def process_revision_directives(context, revision, directives):
        # An autogenerate that finds no change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)

    try:
        connection = _engine().connect()
    except OperationalError as error:
        # A missing database or an unreachable server: one line, no traceback.
        raise click.ClickException(_connection_problem(error)) from None
    with connection:
        conf_args.setdefault("include_object", include_object_for(connection.dialect.name))
        context.configure(connection=connection, target_metadata=_database().metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
