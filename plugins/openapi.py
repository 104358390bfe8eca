"""The API described: the OpenAPI 3.1 document at /api/v1/openapi.json, built from what every
route declares (`_openapi.Api`), and /docs, a page of our own that renders it with no internet.

Why our own page, not Swagger UI or ReDoc: a vendored Swagger UI dist is ~1.5 MB and ReDoc ~1 MB
of minified JavaScript to keep pinned and patched, for a Pi that serves a household; static/docs.*
is ~14 KB we read, with what a client developer needs (endpoints by tag, schemas, examples, a
"try it" with a token field).
"""

from __future__ import annotations

import json
import logging
import sys

import bottle

import wellmate
from wellmate import hookimpl
from wellmate_plugins._openapi import Api, Content, document, markdown, obj, string, undeclared

log = logging.getLogger("wellmate.openapi")

STATIC = wellmate.HERE / "static"
DOCS_FILES = {"docs.js": "application/javascript", "docs.css": "text/css"}
DESCRIPTION = ("Wellmate, a self-hosted health companion: chat with agents (JSON or server-sent events), health "
               "records, reminders, a health library. Errors are `{\"error\": {\"code\", \"message\"}}`; send "
               "`Authorization: Bearer <access_token>` from POST /api/v1/auth/login.")


def build(wm) -> dict:
    return document(wm.app, wellmate.__version__, DESCRIPTION)


@hookimpl
def routes(app, wm):
    cached = {}

    @app.get("/api/v1/openapi.json", api=Api(
        "This API as an OpenAPI 3.1 document", auth="public",
        description="Built from the routes this server serves (a disabled plugin's are not listed): point a client "
                    "generator here.",
        responses={200: obj({"openapi": string(example="3.1.0"), "paths": obj(), "components": obj()},
                            required=["openapi", "paths"])}))
    def openapi_document():
        if "body" not in cached:  # routes are all added before the first request: built once
            cached["body"] = wellmate.json_dumps(build(wm))
        bottle.response.content_type = "application/json"
        return cached["body"]

    @app.get("/docs", api=Api(
        "The API's documentation page (works offline)", auth="public",
        responses={200: Content("text/html", string())}))
    def docs_page():
        return bottle.static_file("docs.html", root=str(STATIC), mimetype="text/html", charset="utf-8")

    @app.get("/docs/<name>", api=Api(
        "A file of the documentation page", auth="public",
        params={"name": string(enum=sorted(DOCS_FILES))},
        responses={200: [Content(media_type, string()) for media_type in sorted(set(DOCS_FILES.values()))]}))
    def docs_file(name):
        if name not in DOCS_FILES:
            raise wellmate.ApiError(404, "not_found", f"No documentation file {name!r}; the page is at /docs.")
        return bottle.static_file(name, root=str(STATIC), mimetype=DOCS_FILES[name], charset="utf-8")


@hookimpl
def startup(wm):
    missing = undeclared(wm.app)
    if missing:  # served, but a client generator reading /api/v1/openapi.json will not know them
        log.warning("routes without api=Api(...), left out of /api/v1/openapi.json and /docs: %s", ", ".join(missing))


@hookimpl
def cli(subparsers, wm_factory):
    parser = subparsers.add_parser("openapi", help="print the OpenAPI document of this config's routes",
                                   description="Print the OpenAPI 3.1 document (or, with --markdown, docs/api-reference.md).")
    parser.add_argument("--markdown", action="store_true", help="print docs/api-reference.md instead of the JSON document")

    def run(args):
        wm = wm_factory()
        try:
            doc = build(wm)
            missing = undeclared(wm.app)
            if missing:
                print("warning: routes without api=Api(...), not listed: " + ", ".join(missing), file=sys.stderr)
            sys.stdout.write(markdown(doc) if args.markdown else json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        finally:
            wm.close()
        return 0

    parser.set_defaults(func=run)

