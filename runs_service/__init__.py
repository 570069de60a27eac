"""runs_service: the system of record for centralized and federated training runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.middleware.proxy_fix import ProxyFix

from runs_service import config as configuration
from runs_service.api import (
    analytics,
    backfill,
    health,
    ingest,
    listing,
    metric_history,
    results,
    runs,
)
from runs_service.api import metric_summaries as metric_summaries_api
from runs_service.api.converters import RunIdConverter, run_id_parameter_schema
from runs_service.api.docs import (
    BEARER_SCHEME,
    BEARER_SCHEME_SPEC,
    SchemaPlugin,
    document_tags,
    storable_text_properties,
)
from runs_service.cli import register_commands
from runs_service.cors import register_cors
from runs_service.errors import register_error_handlers
from runs_service.etags import register_conditional_reads
from runs_service.extensions import (
    api,
    db,
    init_autocommit_reads,
    init_idle_ping,
    init_migrations,
    init_read_replica,
)
from runs_service.json_provider import OrjsonProvider
from runs_service.schemas.fields import JSON_VALUE, JSON_VALUE_SCHEMA
from runs_service.security import register_security
from runs_service.web import register_dashboard

API_DESCRIPTION = """\
System of record for machine-learning training runs of the pneumonia-detection platform.

Writes need `Authorization: Bearer <token>`: a `write` token (`RUNS_API_TOKENS`) for every
write but deletion, an `admin` token (`RUNS_ADMIN_TOKENS`) for deletion. Reads are open
unless `RUNS_REQUIRE_AUTH_FOR_READS` is set; then any token (`RUNS_READ_TOKENS` too) reads.
Every JSON `GET` answer carries an `ETag`; send it back as `If-None-Match` and an unchanged
answer is `304 Not Modified` with no body. Browsers on the origins in `RUNS_CORS_ORIGINS` may
call the API (CORS). Every error is JSON
`{code, status, message, errors?}`. Bodies are `application/json` only and capped by
`RUNS_MAX_CONTENT_LENGTH` (413). Malformed JSON (NaN and Infinity included) is 400;
invalid values are 422 naming the item and field.

With a read replica configured (`RUNS_READ_DATABASE_URL`), GET and HEAD read from a
PostgreSQL standby that may lag the primary by a moment. A client that must see its own
write at once (a read right after a POST or PATCH) sends `X-Runs-Read-Primary: 1`
(or `true`, `yes`, `on`) with the read, which then comes from the primary.
"""

OPENAPI_SETTINGS = {
    "API_TITLE": "runs_service",
    "API_VERSION": "1.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {"info": {"description": API_DESCRIPTION}},
}


MIGRATIONS_DIRECTORY = os.path.join(os.path.dirname(__file__), "..", "migrations")


def create_app(test_config: Mapping[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Build the application from the environment, or from test_config on top of it.

    migrations=False leaves out `flask db …` and Alembic: wsgi.py serves without them.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.json = OrjsonProvider(app)
    app.config.update(OPENAPI_SETTINGS)
    try:
        app.config.update(configuration.from_environment(app.instance_path))
    except configuration.ConfigurationError as error:
        if test_config is not None:
            raise
        # Started by `flask` or gunicorn: one line naming the variable, no traceback.
        raise SystemExit(f"Error: {error}") from None
    if test_config is not None:
        app.config.update(test_config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", configuration.engine_options(app.config))
    app.config.setdefault("SQLALCHEMY_BINDS", configuration.database_binds(app.config))
    os.makedirs(app.instance_path, exist_ok=True)

    register_extensions(app)
    if migrations:
        init_migrations(app, MIGRATIONS_DIRECTORY)
    register_blueprints(app)
    register_error_handlers(app)
    register_security(app)
    register_conditional_reads(app)
    register_cors(app)
    register_commands(app)
    if app.config["RUNS_PROXY_COUNT"]:
        hops = app.config["RUNS_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    # Last, once every blueprint has documented its operations.
    document_tags(api.spec)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    init_autocommit_reads(app)
    init_idle_ping(app)
    init_read_replica(app)
    app.url_map.converters["run_id"] = RunIdConverter
    api.init_app(app, spec_kwargs={"marshmallow_plugin": SchemaPlugin()})
    api.ma_plugin.converter.add_attribute_function(storable_text_properties)
    api.spec.components.schema(JSON_VALUE, JSON_VALUE_SCHEMA)
    api.register_converter(RunIdConverter, run_id_parameter_schema)
    api.spec.components.security_scheme(BEARER_SCHEME, BEARER_SCHEME_SPEC)


def register_blueprints(app: Flask) -> None:
    for module in (runs, listing, results, analytics, ingest, backfill, health, metric_history):
        api.register_blueprint(module.blp)
    api.register_blueprint(metric_summaries_api.blp)
    register_dashboard(app)
    # Swagger UI's assets are served from the installed flask-swagger-ui package.
    app.register_blueprint(
        get_swaggerui_blueprint(
            "/api/docs", "/api/openapi.json", config={"app_name": "runs_service"}
        )
    )
