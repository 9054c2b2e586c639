"""Request-body schemas and controller.validation: Flynn's bodies pass, errors read as Flynn's."""

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from commands.errors import ValidationError
from controller.validation import Validators, load_validators, validate

RECORDED = Path(__file__).parent.parent / "fixtures" / "flynn" / "controller.json"

# Recorded example (Flynn's controller, 2015-12-16) -> the schema its request body maps to.
RECORDED_REQUESTS = {
    "app_create": "app",
    "app_update": "app_update",
    "artifact_create": "artifact",
    "release_create": "release",
    "release_create2": "release",
    "formation_put": "formation",
    "job_run": "new_job",
    "job_update": "job",
    "provider_create": "provider",
    "provider_resource_create": "resource_req",
    "provider_resource_put": "resource",
    "route_create": "route",
    "route_update": "route",
    "deployment_create": "deployment",
    "app_release_set": "app_release",
    "migrate_cluster_domain": "domain_migration",
}

# Recorded response -> the schema of a request that may echo it back whole (flynn-api.md 14).
RECORDED_ECHOES = {
    "app_get": "app_update",
    "release_create": "release",
    "app_release_get": "release",
    "formation_get": "formation",
    "job_get": "job",
    "provider_resource_get": "resource",
    "route_get": "route",
    "migrate_cluster_domain": "domain_migration",
}

SCHEMA_NAMES = {
    "app",
    "key",
    "app_update",
    "artifact",
    "release",
    "formation",
    "new_job",
    "job",
    "deployment",
    "app_release",
    "provider",
    "resource_req",
    "resource",
    "route",
    "domain_migration",
}

# Every keyword a schema may use: annotations, structure, and the rules with a Flynn message.
KNOWN_KEYWORDS = {
    "$schema", "title", "description", "definitions", "$ref", "properties",
    "patternProperties", "items", "type", "enum", "pattern", "maxLength", "minLength",
    "minimum", "maximum", "format", "required", "additionalProperties",
}  # fmt: skip

UUID = "adcccdb4-b1a4-4209-a03a-762f4e021632"


@pytest.fixture(scope="module")
def validators() -> Validators:
    return load_validators()


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    examples: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return examples


def error(validators: Validators, name: str, doc: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validators.validate(name, doc)
    return info.value


def schema_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every subschema of a schema document (not the property names or enum values)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key in {"properties", "patternProperties", "definitions"}:
                for sub in value.values():
                    yield from schema_nodes(sub)
            elif key in {"items", "additionalProperties"}:
                yield from schema_nodes(value)


def schema_documents() -> dict[str, Any]:
    files = resources.files("schemas").iterdir()
    return {
        f.name.removesuffix(".json"): json.loads(f.read_text("utf-8"))
        for f in files
        if f.name.endswith(".json")
    }


def test_every_request_schema_is_loaded(validators: Validators) -> None:
    """load_validators compiles one validator per file in schemas/, named after the file."""
    assert validators.names == SCHEMA_NAMES


def test_schemas_are_self_contained_draft07_objects() -> None:
    """Each schema is draft-07, describes a JSON object and refers only to its own definitions."""
    for name, doc in schema_documents().items():
        assert doc["$schema"] == "http://json-schema.org/draft-07/schema#", name
        assert doc["type"] == "object", name
        refs = [node["$ref"] for node in schema_nodes(doc) if "$ref" in node]
        assert all(ref.startswith("#/definitions/") for ref in refs), name


def test_schemas_use_only_keywords_that_have_a_flynn_message() -> None:
    """No schema uses a rule (anyOf, oneOf, ...) that validation cannot word as Flynn does."""
    for name, doc in schema_documents().items():
        for node in schema_nodes(doc):
            assert set(node) <= KNOWN_KEYWORDS, (name, set(node) - KNOWN_KEYWORDS)


@pytest.mark.parametrize(("example", "schema"), sorted(RECORDED_REQUESTS.items()))
def test_recorded_request_bodies_are_valid(
    validators: Validators, recorded: dict[str, Any], example: str, schema: str
) -> None:
    """Every request body Flynn's own client sent in the recorded examples passes its schema."""
    validators.validate(schema, json.loads(recorded[example]["request"]["body"]))


@pytest.mark.parametrize(("example", "schema"), sorted(RECORDED_ECHOES.items()))
def test_recorded_responses_are_valid_when_echoed_back(
    validators: Validators, recorded: dict[str, Any], example: str, schema: str
) -> None:
    """A body that echoes a recorded response whole (server-made fields included) passes."""
    validators.validate(schema, json.loads(recorded[example]["response"]["body"]))


def test_recorded_invalid_app_name_gets_flynns_exact_error(
    validators: Validators, recorded: dict[str, Any]
) -> None:
    """The recorded invalid app name fails with exactly Flynn's recorded message and field."""
    example = recorded["app_create_error"]
    expected = json.loads(example["response"]["body"])
    err = error(validators, "app", json.loads(example["request"]["body"]))
    assert str(err) == expected["message"]
    assert err.field == expected["detail"]["field"] == "name"
    assert str(err) == 'name String must match the pattern: "^[a-z\\d]+(-[a-z\\d]+)*$".'


def test_module_level_validate_uses_the_shared_validators() -> None:
    """controller.validation.validate checks against the same schemas."""
    validate("app", {"name": "web-1"})
    with pytest.raises(ValidationError):
        validate("app", {"name": "Web"})


def test_unknown_schema_name_is_a_programming_error(validators: Validators) -> None:
    """Asking for a schema that does not exist raises KeyError, not ValidationError."""
    with pytest.raises(KeyError):
        validators.validate("nope", {})


def test_pattern_error_names_the_pattern(validators: Validators) -> None:
    """A pattern violation says which pattern, with the field's key path."""
    err = error(validators, "provider", {"name": "Bad_Name", "url": "http://p"})
    assert (err.field, err.reason) == (
        "name",
        'String must match the pattern: "^[a-z\\d]+(-[a-z\\d]+)*$".',
    )


def test_patterns_are_ascii_and_anchored_like_go(validators: Validators) -> None:
    """Non-ASCII digits and a trailing newline do not satisfy `\\d` and `$`, as in Go's RE2."""
    for name in ["app-\u0663", "app\n"]:
        assert error(validators, "app", {"name": name}).field == "name"


def test_max_length_error(validators: Validators) -> None:
    """A name over 100 characters gets Flynn's maxLength text."""
    err = error(validators, "app", {"name": "a" * 101})
    assert (err.field, err.reason) == ("name", "String length must be shorter than 100 characters.")


def test_min_length_error(validators: Validators) -> None:
    """minLength says what it means (Flynn's library reused the maxLength text)."""
    err = error(validators, "domain_migration", {"old_domain": "a.example", "domain": ""})
    assert (err.field, err.reason) == (
        "domain",
        "String length must be greater than or equal to 1 characters.",
    )


def test_enum_error_lists_the_choices_without_null(validators: Validators) -> None:
    """An unknown strategy lists the allowed values in brackets, as Go prints a slice."""
    err = error(validators, "app", {"strategy": "sirenia"})
    assert (err.field, err.reason) == (
        "strategy",
        "Enum error. The data must be equal to one of these values "
        "[all-at-once one-by-one postgres discoverd-meta].",
    )


def test_type_error_names_expected_and_actual_types(validators: Validators) -> None:
    """A wrong JSON type names the wanted type (null, meaning absent, left out) and the actual."""
    err = error(validators, "app", {"name": 5})
    assert (err.field, err.reason) == (
        "name",
        "Value must be one of these types: string. Got integer",
    )
    err = error(validators, "release", {"processes": {"web": {"cmd": ["ls", 1.5]}}})
    assert (err.field, err.reason) == (
        "processes.web.cmd.1",
        "Value must be one of these types: string. Got number",
    )
    err = error(validators, "formation", {"processes": {"web": "1"}})
    assert (err.field, err.reason) == (
        "processes.web",
        "Value must be one of these types: integer. Got string",
    )


@pytest.mark.parametrize(
    ("doc", "got"),
    [([], "array"), ("x", "string"), (None, "null"), (True, "boolean"), (1, "integer")],
)
def test_root_that_is_not_an_object_is_a_type_error(
    validators: Validators, doc: Any, got: str
) -> None:
    """A body that is valid JSON but not an object fails at the root, with an empty field."""
    for name in SCHEMA_NAMES:
        err = error(validators, name, doc)
        assert (err.field, err.reason) == (
            "",
            f"Value must be one of these types: object. Got {got}",
        )
        assert str(err) == err.reason


def test_additional_property_error_at_the_root(validators: Validators) -> None:
    """An app update rejects an unknown key; the field is the parent object, empty at the root."""
    err = error(validators, "app_update", {"meta": {}, "bogus": 1})
    assert (err.field, err.reason) == (
        "",
        'Additional properties aren\'t allowed, found "bogus" as one of its keys',
    )
    assert str(err) == err.reason


def test_additional_property_error_names_the_parent_path(validators: Validators) -> None:
    """A process type name that is not Procfile-like is reported on `processes`."""
    err = error(validators, "release", {"processes": {"web": {}, "bad name": {}}})
    assert (err.field, err.reason) == (
        "processes",
        'Additional properties aren\'t allowed, found "bad name" as one of its keys',
    )


def test_route_rejects_unknown_keys(validators: Validators) -> None:
    """Routes reject keys outside the router's route fields."""
    err = error(validators, "route", {"type": "http", "config": {"domain": "a.example"}})
    assert (err.field, err.reason) == (
        "",
        'Additional properties aren\'t allowed, found "config" as one of its keys',
    )


def test_required_error_names_the_missing_key(validators: Validators) -> None:
    """A missing required key is reported on its parent object with Flynn's text."""
    err = error(validators, "artifact", {"type": "docker"})
    assert (err.field, err.reason) == (
        "",
        'Required error. The data must be an object with "uri" as one of its keys',
    )
    assert error(validators, "new_job", {"cmd": ["ls"]}).reason.endswith(
        '"release" as one of its keys'
    )
    assert error(validators, "route", {"domain": "a.example"}).reason.endswith(
        '"type" as one of its keys'
    )


@pytest.mark.parametrize(
    "uri", ["dl.flynn.io/slugrunner", "/relative/path", "http://exa mple.com", "http://x/%zz", ""]
)
def test_uri_format_requires_an_absolute_uri(validators: Validators, uri: str) -> None:
    """Artifact and provider URIs need a scheme, no blanks and well-formed escapes."""
    err = error(validators, "artifact", {"type": "docker", "uri": uri})
    assert (err.field, err.reason) == ("uri", "Value must be a valid URI, according to RFC3986.")
    assert error(validators, "provider", {"name": "pg", "url": uri}).field == "url"


@pytest.mark.parametrize(
    "uri",
    [
        "https://dl.flynn.io/tuf?name=flynn/slugrunner&id=dc1d",
        "http://postgres-api.discoverd/databases",
        "file:///var/lib/flynn/image.tar",
        "docker://registry.example:5000/app?id=sha256%3Aab",
    ],
)
def test_uri_format_accepts_absolute_uris(validators: Validators, uri: str) -> None:
    """Absolute URIs of any scheme pass."""
    validators.validate("artifact", {"type": "file", "uri": uri})


def test_minimum_error_rejects_negative_process_counts(validators: Validators) -> None:
    """A negative process count is a validation error on `processes.<type>`."""
    err = error(validators, "formation", {"processes": {"web": 1, "worker": -1}})
    assert (err.field, err.reason) == ("processes.worker", "Value must be greater or equal to 0.")
    assert error(validators, "app", {"deploy_timeout": -5}).field == "deploy_timeout"


def test_maximum_error_rejects_ports_out_of_range(validators: Validators) -> None:
    """A route port above 65535 is rejected."""
    err = error(validators, "route", {"type": "tcp", "port": 65536})
    assert (err.field, err.reason) == ("port", "Value must be less or equal to 65535.")


def test_resource_limits_must_be_non_negative_integers(validators: Validators) -> None:
    """Resource requests and limits in releases and one-off jobs are integers >= 0."""
    release = {"processes": {"web": {"resources": {"memory": {"limit": -1}}}}}
    assert error(validators, "release", release).field == "processes.web.resources.memory.limit"
    job = {"release": UUID, "resources": {"max_fd": {"request": "many"}}}
    assert error(validators, "new_job", job).field == "resources.max_fd.request"


def test_app_create_accepts_null_and_echoed_server_fields(validators: Validators) -> None:
    """`flynn create` sends meta null; null optional fields and server-made fields are accepted."""
    validators.validate("app", {"name": "my-app", "meta": None})
    validators.validate(
        "app",
        {
            "id": UUID,
            "name": "my-app",
            "meta": None,
            "strategy": None,
            "deploy_timeout": None,
            "protected": True,
            "release": UUID,
            "created_at": "2015-12-16T02:20:56.657428Z",
            "updated_at": "2015-12-16T02:20:56.657428Z",
        },
    )


def test_app_create_drops_unknown_keys(validators: Validators) -> None:
    """Unknown keys in an app create pass validation (Flynn's struct decoding drops them)."""
    validators.validate("app", {"name": "my-app", "colour": "blue"})


def test_app_ids_are_uuids_dashed_or_not(validators: Validators) -> None:
    """A client-chosen app id is a uuid, dashed or as 32 hex digits; anything else is rejected."""
    validators.validate("app", {"id": UUID})
    validators.validate("app", {"id": UUID.replace("-", "")})
    assert error(validators, "app", {"id": "not-a-uuid"}).field == "id"


def test_cli_deployment_timeout_update(validators: Validators) -> None:
    """`flynn deployment timeout 15` posts the app name as id, meta null and the timeout."""
    validators.validate("app_update", {"id": "my-app", "meta": None, "deploy_timeout": 15})


def test_cli_meta_set_posts_the_whole_app(validators: Validators) -> None:
    """`flynn meta set` posts the whole app back, server-made fields included."""
    app = {
        "id": UUID,
        "name": "my-app",
        "meta": {"bread": "with hemp"},
        "strategy": "one-by-one",
        "release": UUID,
        "deploy_timeout": 30,
        "protected": False,
        "created_at": "2015-12-16T02:20:56.657428Z",
        "updated_at": "2015-12-16T02:20:56.657428Z",
    }
    validators.validate("app_update", app)
    validators.validate("app_update", {})


def test_cli_resource_add_sends_names_and_null_config(validators: Validators) -> None:
    """`flynn resource add` sends an app name in apps and config null."""
    validators.validate("resource_req", {"apps": ["my-app"], "config": None})
    validators.validate("resource_req", {})


def test_cli_env_set_reposts_the_previous_release(validators: Validators) -> None:
    """`flynn env set` re-posts the old release: created_at, filled limits, both artifact keys."""
    release = {
        "app_id": UUID,
        "artifact": UUID,
        "artifacts": [UUID],
        "env": {"FOO": "bar"},
        "meta": None,
        "processes": {
            "web": {
                "args": ["bin/web"],
                "cmd": None,
                "ports": [
                    {
                        "port": 8080,
                        "proto": "tcp",
                        "service": {
                            "name": "my-app-web",
                            "create": True,
                            "check": {"type": "http"},
                        },
                    }
                ],
                "resources": {
                    "memory": {"request": 1073741824, "limit": 1073741824},
                    "max_fd": {"request": 10000, "limit": 10000},
                    "cpu": {"limit": 1000},
                    "temp_disk": {"request": 104857600, "limit": 104857600},
                },
                "volumes": [{"path": "/data"}],
                "omni": False,
                "data": True,
                "host_network": False,
                "service": "my-app-web",
                "resurrect": False,
            }
        },
        "created_at": "2015-12-16T02:21:06.731551Z",
    }
    validators.validate("release", release)


def test_cli_route_add_and_update(validators: Validators) -> None:
    """`flynn route add` sends a zero created_at; `route update` puts the whole HEAD route back."""
    validators.validate(
        "route",
        {"type": "tcp", "service": "my-app-web", "created_at": "0001-01-01T00:00:00Z", "port": 0},
    )
    route = {
        "type": "http",
        "id": UUID,
        "parent_ref": f"controller/apps/{UUID}",
        "service": "my-app-web",
        "port": 0,
        "leader": False,
        "drain_backends": True,
        "disable_keep_alives": False,
        "created_at": "2016-01-01T00:00:00Z",
        "updated_at": "2016-01-01T00:00:00Z",
        "domain": "my-app.example.com",
        "certificate": {"id": "abc", "routes": [UUID], "chain": "PEM", "cert": "PEM", "key": "PEM"},
        "sticky": True,
        "path": "/",
    }
    validators.validate("route", route)


def test_job_state_report_accepts_seed_and_head_states(validators: Validators) -> None:
    """Job PUTs accept every SEED and HEAD state and reject others."""
    for state in ["pending", "starting", "up", "stopping", "down", "crashed", "failed"]:
        validators.validate("job", {"id": "host-" + UUID, "uuid": UUID, "state": state})
    assert error(validators, "job", {"state": "running"}).field == "state"
