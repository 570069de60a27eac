"""The Blueprint every API module uses: flask-smorest's, with strict JSON parsing."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import flask_smorest
from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

NUL_MESSAGE = "Must not contain the NUL character (\\u0000)."
NUL_KEY_MESSAGE = "Keys must not contain the NUL character (\\u0000)."
NOT_FINITE_MESSAGE = "Number must be finite."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _is_unicode(text: str) -> bool:
    """False for text holding an unpaired surrogate (JSON can spell one: "\\ud800")."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str) and "\x00" in value:
        return NUL_MESSAGE
    if isinstance(value, float) and not math.isfinite(value):
        return NOT_FINITE_MESSAGE  # 1e400 is valid JSON, and Python reads it as inf
    return None


# What a JSON text must contain for check_document to find anything: a NUL or surrogate
# escape, a raw surrogate (decoded with surrogatepass, as json.loads does), or a number
# that may overflow a float (an exponent of 3+ digits, or 200+ digits in a row, which even
# with a 2-digit exponent stays below 1e308). Bodies without any (nearly all) skip the walk.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Every digit read as 0 and E as e, so plain substring searches find the number shapes:
# faster than a regular expression over a batch of metric points (BENCHMARKS.md).
_NUMBER_SHAPE = str.maketrans("123456789E", "000000000e")
_OVERFLOWING_SHAPES = ("e000", "e+000", "e-000", "0" * 200)


def may_need_check(text: str) -> bool:
    """False when check_document would certainly accept the document parsed from text."""
    if "\\u" in text and _SUSPECT_ESCAPE.search(text):
        return True
    if not text.isascii() and _SURROGATE.search(text):
        return True
    shape = text.translate(_NUMBER_SHAPE)
    return any(suspect in shape for suspect in _OVERFLOWING_SHAPES)


def _nested(path: list[str], message: str) -> dict[str, Any]:
    errors: dict[str, Any] = {path[-1]: [message]} if path else {"_schema": [message]}
    for key in reversed(path[:-1]):
        errors = {key: errors}
    return errors


def check_document(document: Any) -> None:
    """Refuse what no database stores: NUL characters, infinities, unpaired surrogates.

    Typed fields have their own rules; this also covers free-form JSON (config,
    client_config) on its way to a JSON column. PostgreSQL refuses NUL in text and JSON,
    neither database stores an infinite JSON number, and unpaired surrogates cannot be
    encoded for either: each would otherwise be a 500.
    """
    stack: list[tuple[list[str], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not _is_unicode(key):
                    abort(400, message="Malformed JSON body: a key is not valid Unicode text.")
                if "\x00" in key:
                    abort(422, messages={"json": _nested(path, NUL_KEY_MESSAGE)})
            stack.extend((path + [key], item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(
                (path + [str(index)], item) for index, item in reversed(list(enumerate(value)))
            )
        elif isinstance(value, str) and not _is_unicode(value):
            abort(
                400, message="Malformed JSON body: text is not valid Unicode (unpaired surrogate)."
            )
        else:
            problem = _value_problem(value)
            if problem is not None:
                abort(422, messages={"json": _nested(path, problem)})


class StrictJSONParser(FlaskParser):
    """Treats NaN/Infinity (which Python's json accepts) as malformed JSON: 400."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        try:
            # Decoded as json.loads decodes bytes, so the text screened is the text parsed.
            text = data.decode(json.detect_encoding(data), "surrogatepass")
            document = json.loads(text, parse_constant=_reject_constant)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
            abort(400, message=f"Malformed JSON body: {error}.")
        except RecursionError:
            abort(400, message="Malformed JSON body: nested too deeply.")
        if may_need_check(text):
            check_document(document)
        return document

    def load_querystring(self, req: Request, schema) -> Any:
        proxy = super().load_querystring(req, schema)
        # webargs would take the first of repeated values; only list parameters take several.
        repeated = {
            name: [f"Give {name} once (it was given {len(values)} times)."]
            for name, values in req.args.lists()
            if len(values) > 1 and name not in proxy.multiple_keys
        }
        if repeated:
            abort(422, messages={"query": repeated})
        return proxy

    def _process_location_data(self, location_data, schema, req, location, unknown, validators):
        # webargs loads a missing body as {}; a schema whose body is optional (Meta.optional_body)
        # gets None instead, so its required fields bind only when a body is sent.
        if location_data is core.missing and getattr(schema.Meta, "optional_body", False):
            return None
        return super()._process_location_data(
            location_data, schema, req, location, unknown, validators
        )


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictJSONParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's, always with a schema instance: given a class, webargs builds a
        new instance for every request, copying each field (0.04-0.3 ms a request)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
