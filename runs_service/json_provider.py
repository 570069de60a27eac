"""JSON responses through orjson: faster than the standard library on histories (BENCHMARKS.md)."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# Marshmallow reports list items under integer keys ({"metrics": {2: {...}}}).
DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    """Serialises with orjson, keeping the keys in the order the schemas declare them.

    Parsing stays with the standard library: request bodies go through the strict
    parser in api.blueprint, which rejects NaN and Infinity.
    """

    sort_keys = False

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=DUMP_OPTIONS)
        except TypeError:
            # orjson stops at 64-bit integers; an error may echo a bigger one back.
            return super().dumps(obj).encode()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._encode(obj).decode()

    def response(self, *args: Any, **kwargs: Any):
        body = self._encode(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(body, mimetype=self.mimetype)
