"""The documentation page is usable: sections with descriptions, realistic examples.

Swagger UI (/api/docs) builds its request bodies and responses from the examples of
the OpenAPI document; a property without one shows a random string or `additionalProp1`.
"""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from runs_service.api.examples import FIELD_EXAMPLES, SCHEMA_FIELD_EXAMPLES

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    from tests.helpers import make_app

    tmp_path = tmp_path_factory.mktemp("docs")
    app = make_app(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path)
    return app.test_client().get("/api/openapi.json").get_json()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def _refers_to_a_schema(prop: dict) -> bool:
    """A nested schema (or a list of them) shows the examples of its own properties."""
    text = json.dumps({key: value for key, value in prop.items() if key != "example"})
    if prop.get("additionalProperties"):
        return False
    return '"$ref"' in text


def test_every_tag_has_operations_and_a_description(document):
    tags = [tag["name"] for tag in document["tags"]]
    used = {tag for _, operation in _operations(document) for tag in operation["tags"]}
    assert len(tags) == len(set(tags))
    assert set(tags) == used, f"tags without operations: {set(tags) - used}"
    for tag in document["tags"]:
        assert tag.get("description") and tag["description"] != tag["name"], tag


def test_reads_keep_the_tags_of_the_specification(document):
    operations = dict(_operations(document))
    assert operations["GET /api/runs/list"]["tags"] == ["runs"]
    assert operations["GET /api/runs/analytics/summary"]["tags"] == ["results"]
    assert "listing" not in {tag["name"] for tag in document["tags"]}
    assert "analytics" not in {tag["name"] for tag in document["tags"]}


def test_every_schema_property_has_an_example(document):
    missing = [
        f"{name}.{prop_name}"
        for name, schema in document["components"]["schemas"].items()
        for prop_name, prop in (schema.get("properties") or {}).items()
        if "example" not in prop and "examples" not in prop and not _refers_to_a_schema(prop)
    ]
    assert not missing, (
        "give these fields metadata={'example': ...} or an entry in "
        f"runs_service/api/examples.py: {missing}"
    )


def test_every_example_is_valid_for_its_property(document):
    components = document["components"]
    invalid = []
    for name, schema in components["schemas"].items():
        for prop_name, prop in (schema.get("properties") or {}).items():
            if "example" not in prop:
                continue
            root = {key: value for key, value in prop.items() if key != "example"}
            validator = jsonschema_rs.Draft202012Validator({**root, "components": components})
            errors = [error.message for error in validator.iter_errors(prop["example"])]
            if errors:
                invalid.append(f"{name}.{prop_name}: {errors[0]}")
    assert not invalid, invalid


def test_free_form_objects_have_an_explicit_example(document):
    for name, schema in document["components"]["schemas"].items():
        for prop_name, prop in (schema.get("properties") or {}).items():
            if "object" in json.dumps(prop.get("type")) and prop.get("additionalProperties"):
                assert isinstance(prop.get("example"), dict), f"{name}.{prop_name}"


def test_text_examples_are_words_not_random_pattern_strings(document):
    for schema in document["components"]["schemas"].values():
        for prop_name, prop in (schema.get("properties") or {}).items():
            if "pattern" in prop and prop.get("example") is not None:
                assert isinstance(prop["example"], str) and prop["example"].strip(), prop_name


def test_the_example_tables_hold_no_unused_schema_entries(document):
    schemas = document["components"]["schemas"]
    stale = [
        key
        for key in SCHEMA_FIELD_EXAMPLES
        if key.split(".")[1] not in (schemas.get(key.split(".")[0], {}).get("properties") or {})
    ]
    assert not stale, f"entries for fields that do not exist: {stale}"
    assert FIELD_EXAMPLES["training_mode"] in ("centralized", "federated")
