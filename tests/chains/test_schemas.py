"""`InputModel` / `drawable()`: optional fields drawn without null unions (what the playground's form library
can draw), defaults and enums kept, nested models rewritten where they are defined; validation unchanged (null
and a missing field still accepted); and every input schema the app serves is free of `{"type": "null"}`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import models_json_schema

from chains.schemas import InputModel, drawable
from server import create_app
from tests.conftest import make_settings

NULL = {"type": "null"}


def nulls(schema: object) -> int:
    """How many `{"type": "null"}` the schema holds anywhere."""
    return json.dumps(schema).count(json.dumps(NULL))


class Place(InputModel):
    city: str
    county: Literal["Oakland", "Wayne", "Macomb"] | None = None


class Ask(InputModel):
    text: str
    lat: float | None = None
    limit: int | None = 10
    kind: Literal["a", "b"] | None = None
    place: Place | None = None
    tags: list[str | None] = Field(default_factory=list)
    either: int | str | None = None


def test_optional_fields_become_their_type_without_a_null_default() -> None:
    props = Ask.model_json_schema()["properties"]
    assert props["lat"] == {"title": "Lat", "type": "number"}
    assert props["limit"] == {"title": "Limit", "type": "integer", "default": 10}  # a real default stays
    assert props["kind"] == {"title": "Kind", "type": "string", "enum": ["a", "b"]}  # an enum stays an enum
    assert props["place"] == {"$ref": "#/$defs/Place"}
    assert props["tags"]["items"] == {"type": "string"}
    assert props["either"] == {"title": "Either", "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert nulls(Ask.model_json_schema()) == 0  # the nested Place's own optional field too


def test_nested_models_are_rewritten_where_they_are_defined() -> None:
    class Outer(BaseModel):  # a plain model holding InputModels, as LangServe's request models do
        input: Ask
        other: Place | None = None

    _, top = models_json_schema([(Outer, "validation")], ref_template="#/components/schemas/{model}")
    defs = top["$defs"]
    assert nulls(defs["Ask"]) == 0 and nulls(defs["Place"]) == 0
    assert nulls(defs["Outer"]) == 1  # Outer is not an InputModel: its own optional field keeps its null


def test_validation_still_accepts_null_and_missing_fields() -> None:
    full = Ask.model_validate({"text": "x", "lat": None, "limit": None, "kind": None, "place": None,
                               "tags": ["a", None], "either": None})
    assert full.lat is None and full.limit is None and full.tags == ["a", None]
    assert Ask.model_validate({"text": "x"}).limit == 10
    with pytest.raises(ValidationError):
        Ask.model_validate({"text": "x", "kind": "c"})


def test_drawable_leaves_other_schemas_alone() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": None},
                                               "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}
    before = json.loads(json.dumps(schema))
    assert drawable(schema) == before
    assert drawable({"anyOf": [NULL, {"type": "boolean"}], "default": True}) == {"type": "boolean", "default": True}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def test_every_route_serves_input_schemas_without_null(client: TestClient) -> None:
    """What the playground reads, for every LangServe route the app has (a new route is covered as it lands)."""
    paths = [r.path for r in client.app.routes  # type: ignore[attr-defined]
             if getattr(r, "path", "").endswith("/input_schema") and "/c/" not in r.path]
    assert {"/search/input_schema", "/describe/input_schema", "/guard/input_schema"} <= set(paths)
    for path in paths:
        schema = client.get(path).json()
        assert nulls(schema) == 0, (path, schema)
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    inputs = [name for name in spec if name.endswith("Input") or name == "ChatMessage"]
    assert {"SearchInput", "DescribeInput", "ChatMessage"} <= set(inputs) and any("Guard" in n for n in inputs)
    for name in inputs:
        assert nulls(spec[name]) == 0, name


def test_the_http_contract_still_takes_explicit_nulls(client: TestClient) -> None:
    body = {"input": {"query": "roof inspection near Troy", "lat": None, "lon": None, "radius_miles": None,
                      "category": None, "max_price": None}}
    r = client.post("/guard/invoke", json={"input": {"text": "roof inspection near Troy"}})
    assert r.status_code == 200
    r = client.post("/search/invoke", json=body)
    assert r.status_code in (200, 503), r.text  # 503 only while the index is still loading
    assert r.status_code != 422
