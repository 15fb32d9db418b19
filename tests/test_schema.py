"""The OpenAPI schema documents every path, method and error of docs/API.md."""

from __future__ import annotations

import json

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
