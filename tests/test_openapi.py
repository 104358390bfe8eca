"""The API described (issue 17): /api/v1/openapi.json lists exactly the routes served, built from
what each route declares; /docs renders it with nothing fetched from elsewhere; docs/api-reference.md is
generated from it."""

import contextlib
import io
import re
import shutil

import jsonschema_rs
import pytest
import yaml

import wellmate
from conftest import ROOT, Served, assert_error, merge, shipped_config
from schemathesis.specs.openapi.definitions import OPENAPI_31

METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}

USER_PLUGIN = '''
from wellmate import hookimpl
from wellmate_plugins._openapi import Api, Param, integer, obj, string, upload


@hookimpl
def routes(app, wm):
    @app.get("/api/v1/hello/<name>", api=Api("Say hello", auth="public",
                                             responses={200: obj({"hello": string()}, required=["hello"])}))
    def hello(name):
        return {"hello": name}

    @app.post("/api/v1/hello/files", api=Api(
        "Keep a file", query={"kind": Param(string(enum=["photo", "scan"]), required=True, description="what it is")},
        body=upload({"file": string(format="binary")}, required=["file"]), responses={201: obj({"size": integer()})}))
    def keep():
        return {"size": 0}

    @app.get("/api/v1/undeclared")
    def undeclared():
        return {}
'''


def build(tmp_path, overrides=None) -> wellmate.Wellmate:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    config = merge(shipped_config(tmp_path), overrides or {})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return wellmate.create_app(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    shutil.copytree(ROOT / "library", tmp / "library")
    wm = build(tmp)
    served = Served(wm)
    yield served, served.client.get("/api/v1/openapi.json").json
    served.stop()
    wm.close()


def served_routes(app) -> set[tuple[str, str]]:
    return {(route.method, re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", route.rule)) for route in app.routes}


def documented(doc) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def test_the_document_lists_every_route_served_and_no_other(site):
    served, doc = site
    assert served_routes(served.wm.app) == documented(doc)
    assert len(documented(doc)) >= 50
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == wellmate.__version__


def test_a_disabled_plugins_routes_are_neither_served_nor_listed_and_a_user_plugins_are(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "hello.py").write_text(USER_PLUGIN)
    wm = build(tmp_path, {"plugins": {"disabled": ["reminders", "scheduler", "delivery_inapp", "delivery_wechat",
                                                   "delivery_webhook", "library"]}})
    served = Served(wm)
    try:
        doc = served.client.get("/api/v1/openapi.json").json
        paths = set(doc["paths"])
        assert not any(path.startswith(("/api/v1/reminders", "/api/v1/library")) for path in paths)
        assert served.client.get("/api/v1/library").status == 404
        assert doc["paths"]["/api/v1/hello/{name}"]["get"]["security"] == []
        keep = doc["paths"]["/api/v1/hello/files"]["post"]
        assert keep["parameters"] == [{"name": "kind", "in": "query", "required": True, "description": "what it is",
                                       "schema": {"type": "string", "enum": ["photo", "scan"]}}]
        form = keep["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
        assert set(keep["responses"]) == {"201", "400", "401", "413", "503"}
        # A route served without a declaration is the one thing missing: what the shipped test forbids.
        assert served_routes(wm.app) - documented(doc) == {("GET", "/api/v1/undeclared")}
    finally:
        served.stop()
        wm.close()


def test_the_document_is_valid_openapi_and_its_examples_fit_their_schemas(site):
    _, doc = site
    jsonschema_rs.validator_for(OPENAPI_31).validate(doc)
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "example" in body:
                validator = jsonschema_rs.validator_for({"allOf": [body["schema"]], "components": doc["components"]})
                assert validator.is_valid(body["example"]), f"{method} {path}: {body['example']}"
                checked += 1
            if method in ("post", "put") and "requestBody" in op:
                assert any("example" in media for media in op["requestBody"]["content"].values()), f"{method} {path}"
    assert checked >= 15


def test_every_operation_documents_the_error_shape_and_who_may_call_it(site):
    _, doc = site
    assert doc["components"]["securitySchemes"]["bearer"] == {**doc["components"]["securitySchemes"]["bearer"],
                                                              "type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]
    public = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            failures = {status: answer for status, answer in op["responses"].items() if int(status) >= 400}
            assert "503" in failures, f"{method} {path}"
            for answer in failures.values():
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if op.get("security") == []:
                public.add(f"{method.upper()} {path}")
            else:
                assert "401" in failures, f"{method} {path}"
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == set(re.findall(r"{(\w+)}", path))
    assert public == {"GET /api/v1/openapi.json", "GET /docs", "GET /docs/{name}", "GET /api/v1/test/health",
                      "GET /api/v1/test/db", "GET /api/v1/health/agents", "GET /api/v1/health/data/types",
                      "POST /api/v1/auth/register", "POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
                      "POST /api/v1/auth/logout", "POST /api/v1/auth/wx-login",
                      "GET /metrics"}  # no user token: its own check (this machine, or metrics.token)
    assert doc["paths"]["/api/v1/admin/users"]["get"]["responses"]["403"]


def test_the_chat_stream_and_query_limits_are_described(site):
    served, doc = site
    stream = doc["paths"]["/api/v1/health/{agent_name}/chat/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert set(stream["x-events"]) == {"start", "message", "done", "error"}
    assert {variant["properties"]["event"]["const"] for variant in stream["schema"]["anyOf"]} == set(stream["x-events"])
    done = stream["x-events"]["done"]["data"]
    assert done == {"$ref": "#/components/schemas/ChatReply"}
    records = {p["name"]: p for p in doc["paths"]["/api/v1/health/data"]["get"]["parameters"]}
    assert records["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    text = doc["paths"]["/api/v1/health/{agent_name}/chat"]["post"]["requestBody"]["content"]["application/json"]
    assert doc["components"]["schemas"]  # the body's text limit is the config's, not a copy of it
    assert text["schema"]["properties"]["text"]["maxLength"] == served.wm.config["chat"]["max_message_chars"]


def test_the_docs_page_and_everything_it_loads_are_served_here(site):
    served, _ = site
    page = served.client.get("/docs")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert {"/docs/docs.js", "/docs/docs.css", "/api/v1/openapi.json"} <= set(assets)
    texts = [page.text]
    for asset in assets:
        r = served.client.get(asset)
        assert r.status == 200, asset
        texts.append(r.text)
    js = served.client.get("/docs/docs.js").text
    assert "/api/v1/openapi.json" in js and "Authorization" in js  # it renders the document; "try it" sends the token
    for text in texts[:1] + [js, served.client.get("/docs/docs.css").text]:
        assert not re.search(r"https?://", text)  # nothing from a CDN: the page works with no internet
    assert_error(served.client.get("/docs/../config.yaml"), 404, "not_found")
    assert_error(served.client.get("/docs/config.yaml"), 404, "not_found")


def test_an_unknown_endpoint_points_at_docs(site):
    served, _ = site
    r = served.client.get("/api/v1/nothing")
    assert_error(r, 404, "not_found")
    assert "/docs" in r.json["error"]["message"] and "README" not in r.json["error"]["message"]


def test_docs_api_md_is_the_generated_one(tmp_path):
    wm = build(tmp_path)
    wm.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert wellmate.main(["--config", str(wm.config_path), "openapi", "--markdown"]) == 0
    assert (ROOT / "docs" / "api-reference.md").read_text(encoding="utf-8") == out.getvalue(), \
        "docs/api-reference.md is stale: python wellmate.py openapi --markdown > docs/api-reference.md"
