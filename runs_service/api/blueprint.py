"""The Blueprint every API module uses: flask-smorest's, with strict JSON parsing."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


class StrictJSONParser(FlaskParser):
    """Treats NaN/Infinity (which Python's json accepts) as malformed JSON: 400."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return json.loads(req.get_data(cache=True), parse_constant=_reject_constant)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
            abort(400, message=f"Malformed JSON body: {error}.")
        except RecursionError:
            abort(400, message="Malformed JSON body: nested too deeply.")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictJSONParser()
