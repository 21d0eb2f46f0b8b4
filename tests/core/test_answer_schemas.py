"""Answer schemas: what a schema file must say, and how a document's differences are reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gpubroker.core.answer_schemas import AnswerSchema, AnswerSchemas, Finding, csv_document, open_objects
from gpubroker.core.errors import PluginError

SOURCE = {"answers": ["GET /v1/zones/{zone}/types"], "source": ["https://example.com/api#types"]}


def schema(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-gpubroker": SOURCE,
        "type": "object",
        "required": ["items"],
        "additionalProperties": False,
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "price"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string"},
                        "price": {"type": "number"},
                        "gpu": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Gpu"}]},
                        "kind": {"enum": ["vm", "metal"]},
                    },
                },
            }
        },
        "$defs": {
            "Gpu": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
            }
        },
    }
    document.update(overrides)
    return document


def test_a_conforming_document_has_no_findings() -> None:
    answer = AnswerSchema("types.json", schema())
    assert answer.check({"items": [{"id": "a", "price": 1, "gpu": {"name": "H100", "count": 8}, "kind": "vm"}]}) == []
    assert answer.check({"items": [{"id": "a", "price": 1.5, "gpu": None}]}) == []


def test_findings_name_the_kind_and_the_place() -> None:
    answer = AnswerSchema("types.json", schema())
    document = {
        "items": [
            {"id": 7, "gpu": {"name": "H100", "count": 8, "vram": 80}, "kind": "gpu", "extra": True},
        ],
        "next": "x",
    }
    assert answer.check(document) == [
        Finding("new", "/items/0/extra", "a field the reference does not define"),
        Finding("new", "/items/0/gpu/vram", "a field the reference does not define"),
        Finding("retyped", "/items/0/id", "integer where the reference says string"),
        Finding("invalid", "/items/0/kind", "'gpu' is not one of ['vm', 'metal']"),
        Finding("missing", "/items/0/price", "a required field is absent"),
        Finding("new", "/next", "a field the reference does not define"),
    ]


def test_answers_match_paths_with_placeholders() -> None:
    answer = AnswerSchema("types.json", schema())
    assert answer.describes("GET", "/v1/zones/fr-par-1/types")
    assert not answer.describes("GET", "/v1/zones/fr-par-1/types/extra")
    assert not answer.describes("POST", "/v1/zones/fr-par-1/types")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x-gpubroker": None}, "no 'x-gpubroker' object"),
        ({"x-gpubroker": {**SOURCE, "source": ["the docs"]}}, "must name its public reference by URL"),
        ({"x-gpubroker": {**SOURCE, "answers": ["/v1/types"]}}, "is not 'METHOD /path'"),
        ({"x-gpubroker": {**SOURCE, "format": "xml"}}, "format must be"),
        ({"type": "thing"}, "is not valid JSON Schema"),
        ({"additionalProperties": None}, "do not say what else they admit"),
    ],
)
def test_a_schema_must_be_sourced_valid_and_strict(change: dict[str, Any], message: str) -> None:
    document = {k: v for k, v in {**schema(), **change}.items() if v is not None}
    with pytest.raises(PluginError, match=message):
        AnswerSchema("types.json", document)


def test_open_objects_are_found_wherever_they_are() -> None:
    document = schema()
    del document["$defs"]["Gpu"]["additionalProperties"]
    assert list(open_objects(document)) == ["#/$defs/Gpu"]


def test_a_folder_of_schemas(tmp_path: Path) -> None:
    (tmp_path / "types.json").write_bytes(orjson.dumps(schema()))
    (tmp_path / "notes.txt").write_text("not a schema")
    schemas = AnswerSchemas(tmp_path)
    found = schemas.for_answer("GET", "/v1/zones/pl-waw-1/types")
    assert found is not None and found.name == "types.json"
    assert schemas.for_answer("GET", "/v1/other") is None
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(PluginError, match=r"broken\.json is not JSON"):
        AnswerSchemas(tmp_path).all  # noqa: B018


def test_empty_or_missing_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="no answer schema"):
        AnswerSchemas(tmp_path).all  # noqa: B018
    with pytest.raises(PluginError, match="does not exist"):
        AnswerSchemas(tmp_path / "schemas").all  # noqa: B018


def test_csv_answers_are_checked_as_rows() -> None:
    body = b'"FormatVersion","v1.0"\n"Version","2026"\n"SKU","Price"\n"A","0.5"\n"B","1.5"\n'
    assert csv_document(body, 3) == {
        "preamble": [["FormatVersion", "v1.0"], ["Version", "2026"]],
        "rows": [{"SKU": "A", "Price": "0.5"}, {"SKU": "B", "Price": "1.5"}],
    }
    rows = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"SKU": {"type": "string"}, "Price": {"type": "string"}},
    }
    answer = AnswerSchema(
        "prices.json",
        {
            "x-gpubroker": {**SOURCE, "format": {"csv": {"header_line": 3}}},
            "type": "object",
            "additionalProperties": False,
            "properties": {"preamble": {"type": "array"}, "rows": {"type": "array", "items": rows}},
        },
    )
    assert answer.check_body(body) == []
    assert answer.check_body(body.replace(b'"SKU","Price"', b'"SKU","Cost"')) == [
        Finding("new", "/rows/0/Cost", "a field the reference does not define"),
        Finding("new", "/rows/1/Cost", "a field the reference does not define"),
    ]
    [broken] = answer.check_body(b'"SKU"\n')
    assert broken.kind == "invalid" and "not a CSV document" in broken.detail


def test_maps_are_found_through_references() -> None:
    document = schema()
    document["properties"]["types"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/Gpu"}}
    document["$defs"]["Gpu"]["properties"]["by_zone"] = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert AnswerSchema("types.json", document).maps == {"/types", "/types/*/by_zone", "/items/[]/gpu/by_zone"}
