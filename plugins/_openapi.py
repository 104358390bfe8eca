"""Route declarations and the OpenAPI 3.1 document built from them (a library, not a plugin).

Each plugin declares a route's contract next to the route, in Bottle's route config:

    @app.post("/api/v1/health/data", api=Api("Store a health record", body=RECORD_IN,
                                              responses={201: RECORD}, errors={409: "..."}))

`document(app)` walks ``app.routes`` and reads every ``route.config["api"]`` back, so what is
listed is what is served: a disabled plugin's routes are neither. Schemas are plain dicts of JSON
Schema 2020-12 (the helpers below only spell them shorter); a schema with a ``title`` becomes a
named component (``#/components/schemas/Title``) the first time it is met. docs/plugins.md
(routes) says how to declare a route; docs/api-reference.md is the document as Markdown.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import NamedTuple

OPENAPI_VERSION = "3.1.0"
ROUTE_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")


# ---------------------------------------------------------------------------------------------
# Schema helpers: each returns a plain JSON Schema dict
# ---------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def schema(type_: str | list | None = None, *, nullable: bool = False, example=None, **keywords) -> dict:
    """A JSON Schema: ``schema("string", max_length=64, example="alice")``. Keyword names are
    JSON Schema's in snake_case (max_length -> maxLength); ``example`` becomes ``examples``."""
    out = {}
    if type_ is not None:
        out["type"] = [type_, "null"] if nullable and isinstance(type_, str) else type_
    for key, value in keywords.items():
        if value is not None:
            out[_camel(key)] = value
    if example is not None:
        out["examples"] = [example]
    return out


def string(**keywords) -> dict:
    return schema("string", **keywords)


def text(max_length=None, **keywords) -> dict:
    """A required text field as `wellmate.field` reads it: stripped, so not blank."""
    return schema("string", min_length=1, max_length=max_length, pattern=r"\S", **keywords)


def integer(minimum=None, maximum=None, **keywords) -> dict:
    return schema("integer", minimum=minimum, maximum=maximum, **keywords)


def number(minimum=None, maximum=None, **keywords) -> dict:
    return schema("number", minimum=minimum, maximum=maximum, **keywords)


def boolean(**keywords) -> dict:
    return schema("boolean", **keywords)


def array(items: dict, **keywords) -> dict:
    return schema("array", items=items, **keywords)


def obj(properties: dict | None = None, required=(), **keywords) -> dict:
    """An object: ``obj({"id": string()}, required=["id"], title="Record")``. Other keys are
    allowed unless ``additional_properties=False``: an answer may grow a key without breaking
    a client."""
    return schema("object", properties=properties or {}, required=list(required) or None, **keywords)


def nullable(inner: dict) -> dict:
    """``inner`` or null."""
    if isinstance(inner.get("type"), str) and "$ref" not in inner and "title" not in inner:
        return {**inner, "type": [inner["type"], "null"]}
    return {"anyOf": [inner, {"type": "null"}]}


def page(item: dict, **keywords) -> dict:
    """The answer of a paged list (`wellmate.paged`): ``{"items": [...], "next": cursor or null}``."""
    return obj({"items": array(item), "next": string(nullable=True, description="pass as ?before= for the next page")},
               required=["items", "next"], **keywords)


def paging(default: int = 20, maximum: int = 100) -> dict:
    """The query of a paged list (`wellmate.page_args`): ``?limit=`` and ``?before=``."""
    return {"limit": integer(1, maximum, default=default), "before": string(description="the `next` of the previous page")}


ERROR = obj({"error": obj({"code": string(example="invalid_field", description="a stable, machine-readable code"),
                           "message": string(description="what is wrong and how to fix it, for a developer")},
                          required=["code", "message"])},
            required=["error"], title="Error")


# ---------------------------------------------------------------------------------------------
# What a route declares
# ---------------------------------------------------------------------------------------------


class Param(NamedTuple):
    """A query parameter that needs more than a schema: ``Param(string(), required=True)``."""
    schema: dict
    required: bool = False
    description: str = ""


class Content(NamedTuple):
    """A body that is not JSON (a CSV upload or download): its media type, schema, example and
    response headers (``{"Content-Disposition": "attachment; ..."}``)."""
    media_type: str
    schema: dict | None = None
    example: object = None
    headers: dict | None = None


def download(media_type: str = "application/octet-stream", attachment: bool = True) -> Content:
    """A file in the response body; ``attachment`` sends Content-Disposition (saved, not shown)."""
    return Content(media_type, string(content_media_type=media_type if "*" not in media_type else None,
                                      format="binary"),
                   headers={"Content-Disposition": "attachment; filename=\"...\""} if attachment else None)


def upload(fields: dict, required=(), example=None) -> Content:
    """A multipart/form-data body: ``upload({"file": string(format="binary")}, required=["file"])``."""
    return Content("multipart/form-data", obj(fields, required=required), example)


class Sse(NamedTuple):
    """A text/event-stream response: ``Sse({"delta": obj(...), "done": obj(...)})``, one schema per
    event name for its ``data:`` JSON (the name "message" is an event sent without ``event:``)."""
    events: dict
    description: str = ""


class Api:
    """A route's contract, given as ``api=Api(...)`` to Bottle's route decorator.

    - ``summary``: a line saying what it does; ``description``: more, in Markdown.
    - ``auth``: "user" (a bearer token; the default), "admin" (an admin's token) or "public".
    - ``body``: the JSON body's schema, or a `Content` (`upload()`, CSV text).
    - ``query``: ``{name: schema or Param}``; path parameters are read from the rule
      (``<record_id>``), strings unless ``params`` gives their schemas.
    - ``responses``: ``{status: schema | Content | Sse | None}`` (None: no body, a 204); a
      value may be ``("description", value)``, or a list of Contents (one per media type).
    - ``errors``: ``{status: "when"}`` for the errors this route answers besides those every
      route of its kind does (400 with a body or query, 401/403 by ``auth``, 404 with a path
      parameter, 413 with a body, 503 storage): each has the Error body.
    - ``tag``: the group in /docs; by default the plugin's name.
    """

    def __init__(self, summary: str, *, description: str = "", auth: str = "user", body=None,
                 query: dict | None = None, params: dict | None = None, responses: dict | None = None,
                 errors: dict | None = None, tag: str | None = None):
        if auth not in ("user", "admin", "public"):
            raise ValueError(f"auth: 'user', 'admin' or 'public', not {auth!r}")
        self.summary, self.description, self.auth, self.body = summary, description, auth, body
        self.query, self.params = query or {}, params or {}
        self.responses, self.errors, self.tag = responses or {200: None}, errors or {}, tag


# ---------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------


def declared(route) -> Api | None:
    api = route.config.get("api")
    return api if isinstance(api, Api) else None


def openapi_path(rule: str) -> str:
    """Bottle's ``/a/<id>`` or ``/a/<id:int>`` as OpenAPI's ``/a/{id}``."""
    return ROUTE_PARAM.sub(lambda m: "{%s}" % m.group(1), rule)


def route_tag(route, api: Api) -> str:
    module = getattr(route.callback, "__module__", "") or ""
    return api.tag or module.rsplit(".", 1)[-1] or "wellmate"


class Components:
    """Named schemas: a schema with a ``title`` is stored once and referred to."""

    # The keywords whose values are schemas (or lists / maps of schemas): titles are looked for
    # there only, so a property called "title" is not taken for a schema's title.
    ONE = ("items", "additionalProperties", "not", "contentSchema", "if", "then", "else", "propertyNames")
    MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
    MAP = ("properties", "$defs", "patternProperties")

    def __init__(self):
        self.schemas: dict[str, dict] = {}

    def use(self, node: dict) -> dict:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        for key in self.ONE:
            if isinstance(out.get(key), dict):
                out[key] = self.use(out[key])
        for key in self.MANY:
            if isinstance(out.get(key), list):
                out[key] = [self.use(item) for item in out[key]]
        for key in self.MAP:
            if isinstance(out.get(key), dict):
                out[key] = {name: self.use(item) for name, item in out[key].items()}
        title = out.get("title")
        if isinstance(title, str) and out.get("type") == "object":
            name = re.sub(r"[^A-Za-z0-9_.-]", "", title)
            known = self.schemas.setdefault(name, out)
            if known != out:
                raise ValueError(f"two different schemas are titled {title!r}: give one another title")
            return {"$ref": f"#/components/schemas/{name}"}
        return out


def _media(value, components: Components) -> dict:
    """The ``content`` of a request body or response (a list: each of its media types)."""
    if isinstance(value, list):
        return {media_type: media for item in value for media_type, media in _media(item, components).items()}
    if isinstance(value, Sse):
        # OpenAPI 3.1 has a text/event-stream schema describe one event, as {event, data, id,
        # retry} with data a string (what schemathesis checks each event against); the data's
        # JSON is its contentSchema. "message" is the event sent without an `event:` line.
        events = {name: {"data": components.use(data)} for name, data in value.events.items()}
        variants = [obj({"event": {"const": name},
                         "data": string(content_media_type="application/json", content_schema=event["data"])},
                        required=["data"] if name == "message" else ["event", "data"])
                    for name, event in events.items()]
        return {"text/event-stream": {
            "schema": {"anyOf": variants, "description": value.description or "Server-sent events"},
            "x-events": events}}
    if isinstance(value, Content):
        media = {}
        if value.schema is not None:
            media["schema"] = components.use(value.schema)
        if value.example is not None:
            media["example"] = value.example
        return {value.media_type: media}
    media = {"schema": components.use(value)}
    if isinstance(value, dict) and value.get("examples"):
        media["example"] = value["examples"][0]
    return {"application/json": media}


def _response(status: int, value, components: Components) -> dict:
    description = ""
    if isinstance(value, tuple) and not isinstance(value, (Content, Sse)) and len(value) == 2 and isinstance(value[0], str):
        description, value = value
    out = {"description": description or HTTPStatus(status).phrase}
    if value is not None:
        out["content"] = _media(value, components)
        headers = {name: example for item in (value if isinstance(value, list) else [value])
                   if isinstance(item, Content) for name, example in (item.headers or {}).items()}
        if headers:
            out["headers"] = {name: {"schema": string(example=example)} for name, example in headers.items()}
        if isinstance(value, Sse) and value.description:
            out["description"] = value.description
    return out


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


COMMON_ERRORS = {
    400: "The body or a parameter is not valid: `error.message` names it.",
    401: "No valid access token: send `Authorization: Bearer <access_token>` (from /api/v1/auth/login).",
    403: "The token is not an admin's.",
    404: "Nothing with this id (or not yours).",
    413: "The body is over server.max_body_kb.",
    503: "The storage cannot be written now (full disk, read-only folder): nothing was saved; retry later.",
}


def common_errors(api: Api, has_path_params: bool) -> dict:
    """The errors every route of this kind may answer (wellmate.py: json_body, require_user,
    route_errors)."""
    statuses = [400] if api.body is not None or api.query else []
    statuses += [401] if api.auth != "public" else []
    statuses += [403] if api.auth == "admin" else []
    statuses += [404] if has_path_params else []
    statuses += [413] if api.body is not None else []
    return {status: COMMON_ERRORS[status] for status in statuses + [503]}


def operation(route, api: Api, components: Components, operation_id: str) -> dict:
    names = ROUTE_PARAM.findall(route.rule)
    op = {"tags": [route_tag(route, api)], "summary": api.summary, "operationId": operation_id}
    if api.description:
        op["description"] = api.description
    params = [{"name": name, "in": "path", "required": True,
               "schema": components.use(api.params.get(name) or string(min_length=1))} for name in names]
    for name, value in api.query.items():
        param = value if isinstance(value, Param) else Param(value)
        entry = {"name": name, "in": "query", "required": param.required, "schema": components.use(param.schema)}
        description = param.description or param.schema.get("description")
        if description:
            entry["description"] = description
        params.append(entry)
    if params:
        op["parameters"] = params
    if api.body is not None:
        op["requestBody"] = {"required": True, "content": _media(api.body, components)}
    responses = {str(status): _response(status, value, components) for status, value in api.responses.items()}
    for status, description in {**common_errors(api, bool(names)), **api.errors}.items():
        responses.setdefault(str(status), _error(description))
    op["responses"] = dict(sorted(responses.items()))
    if api.auth == "public":
        op["security"] = []
    elif api.auth == "admin":
        op["x-admin"] = True
    return op


def document(app, version: str = "", description: str = "") -> dict:
    """The OpenAPI 3.1 document of every declared route of ``app`` (undeclared ones are left out:
    `undeclared(app)` lists them, and a test fails on any)."""
    components = Components()
    components.use(ERROR)
    found = [(route, api) for route in app.routes if (api := declared(route))]
    names = [route.callback.__name__ for route, _ in found]
    paths: dict[str, dict] = {}
    for (route, api), name in zip(found, names):
        operation_id = name if names.count(name) == 1 else f"{route_tag(route, api)}_{name}"
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = operation(route, api, components, operation_id)
    tags = sorted({op["tags"][0] for ops in paths.values() for op in ops.values()})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Wellmate", "version": version, "description": description},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": tag} for tag in tags],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "The access_token of POST /api/v1/auth/login (or register, refresh, wx-login)."}},
        },
    }


def undeclared(app) -> list[str]:
    """``METHOD rule`` of each route served without an ``api=`` declaration."""
    return [f"{route.method} {route.rule}" for route in app.routes if declared(route) is None]


# ---------------------------------------------------------------------------------------------
# Markdown (docs/api-reference.md)
# ---------------------------------------------------------------------------------------------


def _resolve(doc: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _type(doc: dict, node) -> str:
    if not isinstance(node, dict):
        return ""
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in node:
        return " or ".join(_type(doc, item) for item in node["anyOf"])
    kind = node.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        return f"array of {_type(doc, node.get('items'))}"
    limits = [f"{label} {node[key]}" for key, label in (("minimum", "min"), ("maximum", "max"), ("minLength", "min length"),
                                                         ("maxLength", "max length"), ("maxItems", "max items"))
              if key in node]
    if "enum" in node:
        limits.append("one of " + ", ".join(f"`{json.dumps(value)}`" for value in node["enum"]))
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _fields(doc: dict, node) -> list[str]:
    """One line per property of an object schema: name, type, (optional), description."""
    node = _resolve(doc, node) if isinstance(node, dict) and "$ref" in node else node
    required = set((node or {}).get("required", []))
    lines = []
    for prop, sub in ((node or {}).get("properties") or {}).items():
        mark = "" if prop in required else " (optional)"
        note = f": {sub['description']}" if isinstance(sub, dict) and sub.get("description") else ""
        lines.append(f"`{prop}`{mark} {_type(doc, sub)}{note}")
    return lines


def markdown(doc: dict) -> str:
    """docs/api-reference.md: every operation by tag, with its parameters, body and answers."""
    lines = ["# The Wellmate API", "",
             "Generated from the OpenAPI document (`python wellmate.py openapi --markdown > docs/api-reference.md`); a test "
             "keeps it equal. A running server serves the document at `/api/v1/openapi.json` (point a client "
             "generator there) and a page at `/docs` that renders it, with a token field to try calls.", "",
             "- Errors are `{\"error\": {\"code\", \"message\"}}` with the HTTP status: 400 (a bad body or "
             "parameter: the message names it), 401 (no valid token), 403 (not an admin's token), 404 (no such "
             "thing, or not yours), 413 (body over server.max_body_kb), 503 (storage cannot be written; "
             "`Retry-After`). Each route below lists its other errors.",
             "- Unless marked *public*, send `Authorization: Bearer <access_token>` (from `POST /api/v1/auth/login`); "
             "*admin* routes need an admin's token.",
             "- Lists are pages: `?limit=` and `?before=` (the `next` of the previous page; null at the end).",
             "- The main flows: register or log in -> chat (`POST /api/v1/health/{agent_name}/chat`, or `/chat/stream` "
             "for server-sent events) -> records (`POST /api/v1/health/data`, stats) -> reminders "
             "(`POST /api/v1/reminders`).", ""]
    by_tag: dict[str, list] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            by_tag.setdefault(op["tags"][0], []).append((path, method, op))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        for path, method, op in by_tag[tag]:
            who = "public" if op.get("security") == [] else "admin" if op.get("x-admin") else "signed in"
            lines += [f"### `{method.upper()} {path}`", "", f"{op['summary']}. *{who}*", ""]
            if op.get("description"):
                lines += [op["description"], ""]
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    required = ", required" if param["required"] else ""
                    note = f": {param['description']}" if param.get("description") else ""
                    lines.append(f"- query `{param['name']}`: {_type(doc, param['schema'])}{required}{note}")
                elif "type" in param["schema"] and param["schema"] != {"type": "string", "minLength": 1}:
                    lines.append(f"- path `{param['name']}`: {_type(doc, param['schema'])}")
            body = op.get("requestBody")
            example = None
            for media_type, media in (body or {}).get("content", {}).items():
                fields = _fields(doc, media.get("schema"))
                lines.append(f"- body ({media_type}): " + ("; ".join(fields) if fields else _type(doc, media.get("schema"))))
                example = media.get("example", example)
            for status, response in op["responses"].items():
                if response["description"] == COMMON_ERRORS.get(int(status)):
                    continue
                kinds = [f"{media_type} {_type(doc, media['schema'])}" if "$ref" in media.get("schema", {}) else media_type
                         for media_type, media in response.get("content", {}).items()
                         if not (int(status) >= 400 and media_type == "application/json")]
                what = f" ({', '.join(kinds)})" if kinds else ""
                lines.append(f"- {status}{what}: {response['description']}")
                inline = response.get("content", {}).get("application/json", {}).get("schema", {})
                if int(status) < 400 and "$ref" not in inline and _fields(doc, inline):
                    lines.append("  - " + "; ".join(_fields(doc, inline)))
                events = response.get("content", {}).get("text/event-stream", {}).get("x-events")
                for name, event in (events or {}).items():
                    fields = _fields(doc, event["data"]) if "$ref" not in event["data"] else []
                    lines.append(f"  - event `{name}`: " + ("; ".join(fields) if fields else _type(doc, event["data"])))
            lines.append("")
            if example is not None:
                lines += ["```json" if not isinstance(example, str) else "```",
                          example.rstrip() if isinstance(example, str) else json.dumps(example, ensure_ascii=False, indent=2),
                          "```", ""]
    lines += ["## Schemas", ""]
    for name, node in doc["components"]["schemas"].items():
        lines += [f"### {name}", ""]
        if node.get("description"):
            lines += [node["description"], ""]
        lines += [f"- {line}" for line in _fields(doc, node)] + [""]
    return "\n".join(lines).rstrip() + "\n"
