"""The OpenAPI schema documents every path, method and error of docs/API.md."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.django_db

CONTRACT = {
    "/api/v1/components/": {"get", "post"},
    "/api/v1/components/{name}/": {"get", "patch"},
    "/api/v1/components/{name}/tags/": {"post"},
    "/api/v1/components/{name}/history/": {"get"},
    "/api/v1/tags/": {"get"},
    "/api/v1/runs/": {"get", "post"},
    "/api/v1/runs/batch/": {"post"},
    "/api/v1/runs/{id}/": {"get", "patch"},
    "/api/v1/trace/": {"get"},
    "/api/v1/flag/": {"post"},
    "/api/v1/unflag/": {"post"},
    "/api/v1/review/": {"get"},
    "/api/v1/queue/": {"get"},
    "/api/v1/tasks/": {"get"},
    "/api/v1/tasks/{task}/": {"get"},
    "/api/v1/tasks/{task}/outputs/": {"get"},
    "/api/v1/tasks/{task}/feedback/": {"get"},
    "/api/v1/tasks/{task}/pairs/": {"get"},
    "/api/v1/tasks/{task}/metrics/": {"get"},
    "/api/v1/tasks/{task}/series/": {"get"},
    "/api/v1/tasks/{task}/flag/": {"post"},
}


@pytest.fixture
def schema(anon):
    response = anon.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    import json

    return json.loads(response.content)


def test_the_schema_has_every_path_and_method_of_the_contract(schema):
    documented = {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()}

    for path, methods in CONTRACT.items():
        assert path in documented, path
        assert methods <= documented[path], path


def test_every_operation_documents_its_errors(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert {"400", "401", "404"} <= set(op["responses"]), (method, path)


def test_writes_document_202_and_the_sync_answers(schema):
    runs = schema["paths"]["/api/v1/runs/"]["post"]
    components = schema["paths"]["/api/v1/components/"]["post"]
    batch = schema["paths"]["/api/v1/runs/batch/"]["post"]

    assert {"202", "201", "400", "413"} <= set(runs["responses"])
    assert {"202", "201", "200"} <= set(components["responses"])
    assert {"202", "201"} <= set(batch["responses"])
    assert "sync" in {p["name"] for p in runs["parameters"]}
    assert "Location" in runs["responses"]["202"]["headers"]


def test_the_component_list_is_documented_as_a_page_and_trace_with_its_tree_shape(schema):
    components = schema["paths"]["/api/v1/components/"]["get"]["responses"]["200"]
    trace = schema["paths"]["/api/v1/trace/"]["get"]["responses"]["200"]
    refs = json.dumps(components) + json.dumps(trace)

    assert "ComponentPage" in refs
    assert set(schema["components"]["schemas"]["ComponentPage"]["properties"]) == {
        "next",
        "previous",
        "results",
    }
    assert "TraceOrTree" in refs
    assert "childNodes" in schema["components"]["schemas"]["WebTraceNode"]["properties"]


def test_the_docs_page_renders(anon):
    response = anon.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_docs_page_and_its_assets_come_from_the_server_itself(anon):
    import re

    page = anon.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)

    # Nothing from a CDN: behind a firewall the page would be blank.
    assert assets and not [url for url in assets if url.startswith(("http:", "https:", "//"))]
    scripts = [url for url in assets if url.endswith(".js")]
    assert any("swagger-ui-bundle" in url for url in scripts)
    for url in assets:
        response = anon.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, url


def test_the_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "/api/v1/queue/" in (tmp_path / "schema.yaml").read_text()


def _query_parameters(schema: dict) -> list[tuple[str, str, dict, dict]]:
    """(method, URL with its path parameters filled, parameter, operation) for every query
    parameter of every operation of the served schema."""
    found = []
    for path, operations in schema["paths"].items():
        url = path.replace("{id}", "1").replace("{name}", "etl").replace("{task}", "etl")
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found.append((method, url, parameter, operation))
    return found


def _strings_of(parameter_schema: dict) -> list[dict]:
    nodes = [parameter_schema, *parameter_schema.get("anyOf", []), *parameter_schema.get("oneOf", [])]
    return [node for node in nodes if node.get("type") == "string"]


def _ask(api, method: str, url: str, operation: dict, name: str, value: str):
    """The request with `name` set to `value` and the other required parameters valid, so
    that a refusal is this parameter's."""
    params = {
        parameter["name"]: "clean.csv"
        for parameter in operation["parameters"]
        if parameter["in"] == "query" and parameter.get("required") and parameter["name"] != name
    }
    params[name] = value
    if method == "get":
        return api.get(url, params)
    return getattr(api, method)(f"{url}?{urlencode(params)}", {}, format="json")


def test_every_string_query_parameter_is_documented_and_refused_with_a_nul(api, schema):
    from api.serializers.runs import NULL_CHARACTER

    checked = set()
    for method, url, parameter, operation in _query_parameters(schema):
        strings = _strings_of(parameter["schema"])
        if not strings or all("enum" in node for node in strings):
            continue
        name = parameter["name"]
        # The schema says it: no documented string of it holds a NUL.
        for node in strings:
            assert "pattern" in node, (url, name)
            assert re.search(node["pattern"], "a\x00b") is None, (url, name, node["pattern"])

        response = _ask(api, method, url, operation, name, "a\x00b")

        # The server agrees: a 400 naming it.
        assert response.status_code == 400, (url, name, response.status_code)
        assert response.json() == {name: [NULL_CHARACTER]}, (url, name)
        checked.add(name)
    assert {"output_id", "run_id", "component", "tag", "owner", "cursor", "date_lower"} <= checked


def test_every_query_parameter_given_empty_is_a_400_naming_it_as_the_schema_says(api, schema):
    from api.requests import BLANK_PARAMETER, BOOLEAN_PARAMETERS, SYNC_INVALID

    checked = set()
    for method, url, parameter, operation in _query_parameters(schema):
        name, parameter_schema = parameter["name"], parameter["schema"]
        # The schema allows no empty value: OpenAPI's allowEmptyValue is false by default,
        # and no string of it is shorter than 1 (an integer, a boolean or an enum has no "").
        assert not parameter.get("allowEmptyValue"), (url, name)
        for node in _strings_of(parameter_schema):
            assert node.get("minLength", 0) >= 1 or "" not in node.get("enum", [""]), (url, name)

        response = _ask(api, method, url, operation, name, "")

        assert response.status_code == 400, (method, url, name, response.status_code)
        expected = SYNC_INVALID if name in BOOLEAN_PARAMETERS else BLANK_PARAMETER
        assert response.json() == {name: [expected]}, (url, name)
        checked.add((url, name))
    assert ("/api/v1/lineage/runs/", "limit") in checked  # the fuzzer's find (issue 26)
    assert {url for url, name in checked if name == "limit"} == {
        "/api/v1/components/",
        "/api/v1/components/etl/history/",
        "/api/v1/tags/",
        "/api/v1/runs/",
        "/api/v1/runs/1/impact/",
        "/api/v1/impact/",
        "/api/v1/lineage/runs/",
        "/api/v1/tasks/",
        "/api/v1/tasks/etl/outputs/",
        "/api/v1/tasks/etl/feedback/",
        "/api/v1/tasks/etl/pairs/",
    }
