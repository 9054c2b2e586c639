"""Request-body validation: schemas/*.json compiled once, errors worded as Flynn words them."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import fastjsonschema

from commands.errors import ValidationError

# Flynn's regexps are Go RE2: `\d` and `\w` are ASCII and `$` ends the text. Python's `re` is
# Unicode-aware and lets `$` match before a final newline, so every pattern gets the ASCII flag
# (dropped again from messages). fastjsonschema already turns `$` into `\Z` in `pattern`,
# but not in `patternProperties` keys, so we do that there.
_ASCII = "(?a)"
_DOLLAR = re.compile(r"(?<!\\)\$")
# Go's url.ParseRequestURI, restricted to absolute URIs: a scheme, then no blanks, no control
# characters and only well-formed %-escapes.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?:[^\x00-\x20\x7f%]|%[0-9A-Fa-f]{2})+\Z")
_INDEX = re.compile(r"\[(\d+)\]")
_DRAFT_04 = "http://json-schema.org/draft-04/schema#"


class Validators:
    """The compiled request-body schemas, by name (the file name in schemas/ without `.json`)."""

    def __init__(self, compiled: Mapping[str, Callable[[Any], Any]]) -> None:
        self._compiled = dict(compiled)

    @property
    def names(self) -> frozenset[str]:
        """The schema names that can be passed to `validate`."""
        return frozenset(self._compiled)

    def validate(self, name: str, doc: Any) -> None:
        """Check a decoded body; raise ValidationError for the first violation, like Flynn."""
        try:
            self._compiled[name](doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _to_validation_error(exc) from exc


def load_validators() -> Validators:
    """Read and compile every schema in the `schemas` package."""
    compiled: dict[str, Callable[[Any], Any]] = {}
    for entry in resources.files("schemas").iterdir():
        if entry.name.endswith(".json"):
            schema = _go_regexps(json.loads(entry.read_text(encoding="utf-8")))
            # Draft 4's rules (the schemas use nothing newer): an integer is an integer
            # literal, not 1.0 or 1e2, which Flynn's Go decoder refuses for int fields and
            # which would reach the scheduler as floats.
            schema["$schema"] = _DRAFT_04
            compiled[entry.name.removesuffix(".json")] = fastjsonschema.compile(
                schema, formats={"uri": _is_uri}, use_default=False
            )
    return Validators(compiled)


@functools.cache
def default_validators() -> Validators:
    """The process-wide Validators, compiled on first use."""
    return load_validators()


def validate(name: str, doc: Any) -> None:
    """Validate `doc` against schema `name`; raise ValidationError(field, message) if invalid."""
    default_validators().validate(name, doc)


def _is_uri(value: str) -> bool:
    return _URI.match(value) is not None


def _go_regexps(node: Any) -> Any:
    if isinstance(node, list):
        return [_go_regexps(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _go_regexps(value) for key, value in node.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _ASCII + out["pattern"]
    if isinstance(out.get("patternProperties"), dict):
        out["patternProperties"] = {
            _ASCII + _DOLLAR.sub(r"\\Z", key): value
            for key, value in out["patternProperties"].items()
        }
    return out


def _to_validation_error(exc: fastjsonschema.JsonSchemaValueException) -> ValidationError:
    # Flynn: controller/schema/schema.go keeps only the first error, with its dotted key path.
    return ValidationError(_field(exc.name), _message(exc))


def _message(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """The cupcake/jsonschema text Flynn sends for this rule (flynn-api.md 1.5)."""
    limit, value = exc.rule_definition, exc.value
    match exc.rule:
        case "type":
            return (
                f"Value must be one of these types: {_type_names(limit)}. Got {_json_type(value)}"
            )
        case "enum":
            # null is "not given", not one of the choices, so it is not listed.
            choices = " ".join(str(choice) for choice in limit if choice is not None)
            return f"Enum error. The data must be equal to one of these values [{choices}]."
        case "pattern":
            return f'String must match the pattern: "{limit.removeprefix(_ASCII)}".'
        case "maxLength":
            return f"String length must be shorter than {limit} characters."
        case "minLength":
            # Flynn's library reuses the maxLength text here (a bug); we say what is meant.
            return f"String length must be greater than or equal to {limit} characters."
        case "minimum":
            return f"Value must be greater or equal to {limit}."
        case "maximum":
            return f"Value must be less or equal to {limit}."
        case "format" if limit == "uri":
            return "Value must be a valid URI, according to RFC3986."
        case "required":
            missing = next(key for key in limit if key not in value)
            return f'Required error. The data must be an object with "{missing}" as one of its keys'
        case "additionalProperties":
            extra = _first_extra_key(value, exc.definition)
            return f'Additional properties aren\'t allowed, found "{extra}" as one of its keys'
    return f"Value is invalid ({exc.rule})."


def _field(name: str | None) -> str:
    """fastjsonschema's `data.processes.web`, `data.cmd[0]` as Flynn's `processes.web`, `cmd.0`."""
    path = (name or "data").removeprefix("data")
    return _INDEX.sub(r".\1", path).removeprefix(".")


def _type_names(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    if len(names) > 1 and "null" in names:
        names.remove("null")  # null is "not given", not a type the client should send
    return ", ".join(names)


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "number"
        case str():
            return "string"
        case list() | tuple():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


def _first_extra_key(value: dict[str, Any], definition: dict[str, Any]) -> str:
    known = definition.get("properties", {})
    patterns = [re.compile(pattern) for pattern in definition.get("patternProperties", {})]
    return next(
        key
        for key in value
        if key not in known and not any(pattern.search(key) for pattern in patterns)
    )
