"""Changes to the OpenAPI schema drf-spectacular builds, so that it says what the server does."""

from __future__ import annotations

from typing import Any


def request_bodies_are_closed(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every request body's object allows no property it does not define: the server answers
    a 400 naming it (api/fields.py's InputSerializer)."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
            _strings_hold_no_nul(schema)
    # An unflag names an output or says "all": true, never both (UnflagSerializer.validate).
    if "UnflagRequest" in schemas:
        schemas["UnflagRequest"]["oneOf"] = [
            {"required": ["output_id"], "properties": {"all": {"enum": [False]}}},
            {
                "required": ["all"],
                "properties": {"all": {"enum": [True]}},
                "not": {"required": ["output_id"]},
            },
        ]
    # An empty body names nothing to unflag, and is no OpenLineage event: a 400.
    for path in ("/api/v1/unflag/", "/api/v1/lineage", "/api/v1/lineage/batch"):
        operation = result.get("paths", {}).get(path, {}).get("post", {})
        if "requestBody" in operation:
            operation["requestBody"]["required"] = True
    # drf-spectacular gives a ListSerializer's min_length no minItems: a batch's runs.
    if "RunBatchRequest" in schemas:
        schemas["RunBatchRequest"]["properties"]["runs"]["minItems"] = 1
    return result


def query_parameters_as_enforced(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every string query parameter is at least one character without NUL: the server answers
    a 400 naming it otherwise, for every view at once (api/requests.py's KnownQueryParameters),
    whatever its serializer says. An enum's values already say so."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _strings_are_given(parameter.get("schema", {}))
    return result


def _strings_are_given(schema: dict[str, Any]) -> None:
    for node in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        if node.get("type") == "string" and "enum" not in node:
            node["minLength"] = max(node.get("minLength", 0), 1)
            node.setdefault("pattern", NO_NUL)


NO_NUL = "^[^\\x00]*$"


def _strings_hold_no_nul(schema: Any) -> None:
    """Every string of a request body refuses NUL (jsonb cannot hold it): say so, with a
    pattern, where a field's schema has none of its own."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("type") == "string" and "pattern" not in node and "enum" not in node:
                node["pattern"] = NO_NUL
            stack.extend(
                value
                for key, value in node.items()
                if key in ("properties", "items", "oneOf", "anyOf", "allOf")
                or isinstance(value, dict)
                and key not in ("example", "default")
            )
