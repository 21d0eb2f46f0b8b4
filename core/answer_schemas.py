"""Schemas of providers' answers, built from each provider's public reference.

A plugin keeps, beside its recordings, one JSON Schema (draft 2020-12) per kind of answer it
reads, in a package folder named by ``ProviderAdapter.schemas``. Each schema says which answers
it describes and where its definitions come from, in an ``x-gpubroker`` annotation::

    {"$schema": "https://json-schema.org/draft/2020-12/schema",
     "title": "Vultr: list plans",
     "x-gpubroker": {"answers": ["GET /v2/plans"],
                     "source": ["https://www.vultr.com/api/#tag/plans/operation/list-plans"]},
     "type": "object", "properties": {...}, "required": [...], "additionalProperties": false}

``answers`` are ``METHOD /path`` patterns (``{name}`` matches one path segment); a successful
answer to such a call must validate. ``source`` names the public reference (documentation page,
OpenAPI document, SDK type) the definitions come from. ``format`` is ``json`` (the default) or
``{"csv": {"header_line": N}}`` for a CSV file whose column names are on line N: it is checked
as ``{"preamble": [[...], ...], "rows": [{column: value}, ...]}``.

Every object with ``properties`` must say what else it admits (``additionalProperties``), so a
recording or a live answer holding a field the reference does not define is reported, never
silently accepted. Differences are reported as ``Finding``s: ``new`` (a field the schema does
not define), ``missing`` (a required field absent), ``retyped`` (a value of another JSON type)
and ``invalid`` (any other rule broken, such as an enum value).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.resources.abc import Traversable
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from gpubroker.core.errors import PluginError

Kind = Literal["new", "missing", "retyped", "invalid"]
ANNOTATION = "x-gpubroker"
_URL = re.compile(r"https?://\S+")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True, order=True)
class Finding:
    """One way a document differs from its schema; ``path`` is a JSON pointer such as
    ``/plans/0/gpu_type``."""

    kind: Kind
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path or '/'}: {self.detail}"


class AnswerSchema:
    """One schema file: the answers it describes, its sources, and the validator."""

    def __init__(self, name: str, document: Mapping[str, Any]) -> None:
        self.name = name
        self.document = document
        annotation = document.get(ANNOTATION)
        if not isinstance(annotation, Mapping):
            raise PluginError(f"answer schema {name}: no {ANNOTATION!r} object naming its answers and source")
        answers = annotation.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise PluginError(f"answer schema {name}: {ANNOTATION}.answers must list 'METHOD /path' patterns")
        self.answers: tuple[str, ...] = tuple(answers)
        self._patterns = tuple(_answer_pattern(name, answer) for answer in answers)
        source = annotation.get("source")
        sources = [source] if isinstance(source, str) else source
        if not isinstance(sources, list) or not any(isinstance(s, str) and _URL.search(s) for s in sources):
            raise PluginError(f"answer schema {name}: {ANNOTATION}.source must name its public reference by URL")
        self.sources: tuple[str, ...] = tuple(sources)
        self.format: Any = annotation.get("format", "json")
        if self.format != "json" and not _csv_header_line(self.format):
            raise PluginError(f"answer schema {name}: format must be 'json' or {{'csv': {{'header_line': N}}}}")
        try:
            Draft202012Validator.check_schema(document)
        except SchemaError as exc:
            raise PluginError(f"answer schema {name} is not valid JSON Schema: {exc.message}") from None
        loose = list(open_objects(document))
        if loose:
            raise PluginError(
                f"answer schema {name}: objects at {', '.join(loose)} have properties but do not say "
                "what else they admit (set additionalProperties)"
            )

    @cached_property
    def maps(self) -> frozenset[str]:
        """Where the schema holds maps (objects keyed by data, such as instance types by name),
        as paths with array positions folded to ``[]``: their keys are values, not fields."""
        return frozenset(_map_paths(self.document, self.document, "", 0))

    @cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.document)

    def describes(self, method: str, path: str) -> bool:
        text = f"{method.upper()} /{path.strip('/')}"
        return any(pattern.fullmatch(text) for pattern in self._patterns)

    def decode(self, body: bytes) -> Any:
        """The answer as the document the schema describes (JSON, or a CSV file as rows)."""
        if self.format == "json":
            return orjson.loads(body)
        return csv_document(body, _csv_header_line(self.format))

    def check(self, document: Any) -> list[Finding]:
        """Every way ``document`` differs from the schema, sorted; empty when it conforms."""
        findings = {finding for error in self._validator.iter_errors(document) for finding in _findings(error)}
        return sorted(findings, key=lambda f: (f.path, f.kind, f.detail))

    def check_body(self, body: bytes) -> list[Finding]:
        """``check`` of a raw answer; a body that cannot be decoded is one ``invalid`` finding."""
        try:
            document = self.decode(body)
        except (orjson.JSONDecodeError, csv.Error, UnicodeDecodeError, ValueError) as exc:
            return [Finding("invalid", "", f"not a {self._format_name} document: {exc}")]
        return self.check(document)

    @property
    def _format_name(self) -> str:
        return "JSON" if self.format == "json" else "CSV"


class AnswerSchemas:
    """A plugin's schema folder: every ``*.json`` file in it is one ``AnswerSchema``."""

    def __init__(self, folder: Traversable) -> None:
        self._folder = folder

    @cached_property
    def all(self) -> tuple[AnswerSchema, ...]:
        if not self._folder.is_dir():
            raise PluginError(f"the answer schema folder {self._folder} does not exist")
        schemas = []
        for item in sorted(self._folder.iterdir(), key=lambda entry: entry.name):
            if item.name.endswith(".json"):
                try:
                    document = orjson.loads(item.read_bytes())
                except orjson.JSONDecodeError as exc:
                    raise PluginError(f"answer schema {item.name} is not JSON: {exc}") from None
                schemas.append(AnswerSchema(item.name, document))
        if not schemas:
            raise PluginError(f"no answer schema (*.json) in {self._folder}")
        return tuple(schemas)

    def for_answer(self, method: str, path: str) -> AnswerSchema | None:
        """The schema describing successful answers to ``method path``, if any."""
        return next((schema for schema in self.all if schema.describes(method, path)), None)


def csv_document(body: bytes, header_line: int) -> dict[str, Any]:
    """A CSV file as ``{"preamble": [...lines before the header...], "rows": [{...}, ...]}``."""
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    if len(lines) < header_line:
        raise ValueError(f"the file has {len(lines)} lines; the header is expected on line {header_line}")
    header = lines[header_line - 1]
    rows = []
    for number, values in enumerate(lines[header_line:], start=header_line + 1):
        if len(values) != len(header):
            raise ValueError(f"line {number} has {len(values)} values for {len(header)} columns")
        rows.append(dict(zip(header, values, strict=True)))
    return {"preamble": lines[: header_line - 1], "rows": rows}


def open_objects(schema: Any, pointer: str = "#") -> Iterator[str]:
    """Where ``schema`` has an object with ``properties`` but no ``additionalProperties`` or
    ``unevaluatedProperties``: such an object would silently accept fields nobody defined."""
    if isinstance(schema, Mapping):
        if "properties" in schema and not {"additionalProperties", "unevaluatedProperties"} & schema.keys():
            yield pointer
        for key, value in schema.items():
            if key not in ("const", "enum", "examples", "default", ANNOTATION):
                yield from open_objects(value, f"{pointer}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from open_objects(value, f"{pointer}/{index}")


def _map_paths(schema: Any, root: Mapping[str, Any], path: str, depth: int) -> Iterator[str]:
    if not isinstance(schema, Mapping) or depth > 32:
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        yield from _map_paths(target, root, path, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            yield from _map_paths(branch, root, path, depth + 1)
    values = schema.get("additionalProperties")
    if isinstance(values, Mapping):
        yield path
        yield from _map_paths(values, root, f"{path}/*", depth + 1)
    for name, sub in (schema.get("properties") or {}).items():
        yield from _map_paths(sub, root, f"{path}/{name}", depth + 1)
    if isinstance(schema.get("items"), Mapping):
        yield from _map_paths(schema["items"], root, f"{path}/[]", depth + 1)


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def pointer(parts: Any) -> str:
    return "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in parts)


def _findings(error: ValidationError) -> Iterator[Finding]:
    if error.context:  # anyOf/oneOf: report what the closest alternative found
        best = min(_alternatives(error), key=lambda branch: branch[0], default=None)
        if best is not None and best[1]:
            yield from best[1]
            return
    where = pointer(error.absolute_path)
    instance, rule = error.instance, error.validator
    if rule == "additionalProperties" and isinstance(instance, Mapping):
        defined = error.schema.get("properties", {})
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extras = [k for k in instance if k not in defined and not any(p.search(k) for p in patterns)]
        for key in extras:
            yield Finding("new", f"{where}/{key}", "a field the reference does not define")
        return
    if rule == "required" and isinstance(instance, Mapping):
        for key in error.validator_value:
            if key not in instance:
                yield Finding("missing", f"{where}/{key}", "a required field is absent")
        return
    if rule == "type":
        expected = error.validator_value
        names = "/".join(expected) if isinstance(expected, list) else expected
        if not (json_type(instance) == "integer" and "number" in names):
            yield Finding("retyped", where, f"{json_type(instance)} where the reference says {names}")
        return
    yield Finding("invalid", where, error.message[:200])


def _alternatives(error: ValidationError) -> Iterator[tuple[tuple[bool, int], list[Finding]]]:
    """Each branch's findings, ranked: a branch whose type the value has, with fewest findings, first."""
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    for errors in by_branch.values():
        wrong_type = any(sub.validator == "type" and not sub.relative_path for sub in errors)
        findings = sorted({finding for sub in errors for finding in _findings(sub)})
        yield (wrong_type, len(findings)), findings


def _answer_pattern(name: str, answer: str) -> re.Pattern[str]:
    method, _, path = answer.partition(" ")
    if method not in _METHODS or not path.startswith("/"):
        raise PluginError(f"answer schema {name}: {answer!r} is not 'METHOD /path'")
    parts = [re.escape(part) for part in re.split(r"\{[^/}]+\}", "/" + path.strip("/"))]
    return re.compile(re.escape(method) + " " + "[^/]+".join(parts))


def _csv_header_line(value: Any) -> int | None:
    if isinstance(value, Mapping) and isinstance(value.get("csv"), Mapping):
        line = value["csv"].get("header_line")
        if isinstance(line, int) and line >= 1:
            return line
    return None
