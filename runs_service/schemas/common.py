"""Shapes shared by several blueprints."""

from __future__ import annotations

from marshmallow import Schema, fields


class BatchResultSchema(Schema):
    """What a batch write did; re-sending the same batch answers all unchanged."""

    inserted = fields.Integer(metadata={"description": "Items that did not exist before."})
    updated = fields.Integer(metadata={"description": "Existing items whose values changed."})
    unchanged = fields.Integer(
        metadata={"description": "Items that already existed with the same values."}
    )
