"""/docs in a real browser (issue 17, point 1): headless Chromium, driven by Playwright, opens the
page of the real app over waitress with every request to anywhere but 127.0.0.1 aborted, and a
user reads every route, expands one and uses "try it" against the live server. No console errors.

Needs Debian's chromium (`apt-get install chromium`; Playwright's own browser download fails on a
closed network) and playwright (requirements-dev.txt). Without them the tests skip, saying so,
unless WELLMATE_REQUIRE_BROWSER is set (CI sets it): then they fail."""

import io
import json
import os
import re
import shutil
from urllib.parse import urlsplit

import pytest
from PIL import Image

import wellmate
from conftest import ROOT, Served, shipped_config

import yaml

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str | None:
    return os.environ.get("WELLMATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not chromium_path():
        return "no chromium on PATH (apt-get install chromium, or set WELLMATE_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = unavailable()
    if reason:
        if os.environ.get("WELLMATE_REQUIRE_BROWSER"):
            pytest.fail(f"WELLMATE_REQUIRE_BROWSER is set and the browser tests cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs_browser")
    (tmp / "plugins").mkdir()
    shutil.copytree(ROOT / "library", tmp / "library")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(shipped_config(tmp), allow_unicode=True), encoding="utf-8")
    wm = wellmate.create_app(path)
    served = Served(wm)
    yield served
    served.stop()
    wm.close()


class Tab:
    """A fresh browser tab on /docs, with what the test checks at its end: every request it tried
    to send elsewhere (aborted), and every console error and uncaught page error."""

    def __init__(self, browser, site):
        self.context = browser.new_context()
        self.elsewhere, self.errors, self.requests = [], [], []
        self.refused = set()  # (status, path) of the answers a test asked for: Chromium logs each as an error
        self.context.route("**/*", self.route)
        self.page = self.context.new_page()
        self.page.on("console", self.console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(site.url + "/docs")
        self.page.wait_for_selector("details.op")

    def console(self, message):
        if message.type != "error":
            return
        refused = re.fullmatch(r"Failed to load resource: the server responded with a status of (\d+) .*", message.text)
        if refused and (int(refused[1]), urlsplit(message.location["url"]).path) in self.refused:
            return
        self.errors.append(f"console: {message.text} {message.location}")

    def route(self, route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the page must work with no internet: nothing may even try
            self.elsewhere.append(route.request.url)
            route.abort()

    def operation(self, method: str, path: str):
        """The operation's <details>, expanded."""
        details = self.page.locator("details.op").filter(
            has=self.page.locator(f'summary > .method:text-is("{method}")')).filter(
            has=self.page.locator(f'summary > .path:text-is("{path}")'))
        details.locator("summary").click()
        details = details.and_(self.page.locator("details[open]"))
        assert details.count() == 1
        return details

    def send(self, details, status: int):
        """Click "Send" and wait for the answer with ``status``; its text."""
        if status >= 400:
            path = details.locator("summary > .path").inner_text()
            self.refused.add((status, path))  # a path without parameters; enough for these tests
        details.get_by_role("button", name="Send").click()
        answer = details.locator("div.try > pre")
        answer.filter(has_text=re.compile(rf"^{status} ")).wait_for()
        return answer

    def finish(self):
        assert self.elsewhere == [], "the page tried to reach outside this server"
        assert all(urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname == "127.0.0.1"
                   for url in self.requests), self.requests
        assert self.errors == []
        self.context.close()


@pytest.fixture
def tab(browser, site):
    tab = Tab(browser, site)
    yield tab
    tab.finish()


def answer_json(answer) -> dict:
    text = answer.inner_text()
    return json.loads(text[text.index("\n") + 1:].split("\n\n(access_token")[0])


def test_the_page_lists_every_route_of_the_document(tab, site):
    doc = site.client.get("/api/v1/openapi.json").json
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    shown = tab.page.eval_on_selector_all(
        "details.op > summary", "els => els.map(s => [s.querySelector('.method').textContent, "
                                "s.querySelector('.path').textContent])")
    assert len(shown) == len(listed) and {tuple(row) for row in shown} == listed
    tags = {op["tags"][0] for ops in doc["paths"].values() for op in ops.values()}
    assert set(tab.page.locator("nav#tags a").all_inner_texts()) == tags | {"schemas"}
    assert tab.page.locator("#version").inner_text() == wellmate.__version__
    # Descriptions are Markdown: their `code` spans are shown as code, not with their backticks.
    assert "`" not in tab.page.locator("header").inner_text()
    assert tab.page.locator("#description code").count() >= 2


def test_an_expanded_operation_shows_its_parameters_body_and_answers(tab):
    details = tab.operation("GET", "/api/v1/library")
    assert details.locator("h4", has_text="Parameters").is_visible()
    params = details.locator("table").first.inner_text()
    assert "q" in params and "limit" in params
    assert details.get_by_role("button", name="Send").is_visible()
    register = tab.operation("POST", "/api/v1/auth/register")
    text = register.inner_text()
    assert "Body" in text and "201" in text and "username" in text
    assert "`" not in text  # "`error.message` names it": a code span
    assert '"correct horse"' in register.locator("textarea").input_value()  # the example, ready to send
    assert tab.page.locator("details.op[open]").count() == 2


def test_try_it_registers_then_calls_signed_in_routes_with_the_token_it_got(tab):
    register = tab.operation("POST", "/api/v1/auth/register")
    register.locator("textarea").fill(json.dumps({"username": "browser-user", "password": "correct horse battery"}))
    answer = tab.send(register, 201)
    assert answer_json(answer)["user"]["username"] == "browser-user"
    token = tab.page.locator("#token").input_value()
    assert token and token == answer_json(answer)["access_token"]  # filled in from the answer

    profile = tab.operation("GET", "/api/v1/users/profile")
    assert answer_json(tab.send(profile, 200))["username"] == "browser-user"

    # A path parameter and a streamed answer: a chat turn as server-sent events, shown as they come.
    stream = tab.operation("POST", "/api/v1/health/{agent_name}/chat/stream")
    stream.locator("label", has_text="agent_name").locator("input").fill("physical")
    stream.locator("textarea").fill(json.dumps({"text": "I slept badly again, any advice?"}))
    answer = tab.send(stream, 200)
    answer.filter(has_text="event: done").wait_for()
    assert "event: start" in answer.inner_text()

    # Signed out (the field emptied), the same call is the API's JSON 401.
    tab.page.locator("#token").fill("")
    assert answer_json(tab.send(profile, 401))["error"]["code"] == "unauthorized"


def test_try_it_uploads_a_photo_as_a_multipart_form_and_shows_it_back(tab):
    register = tab.operation("POST", "/api/v1/auth/register")
    register.locator("textarea").fill(json.dumps({"username": "photo-user", "password": "correct horse battery"}))
    tab.send(register, 201)

    upload = tab.operation("POST", "/api/v1/uploads")
    png = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(png, "PNG")
    upload.locator('input[type="file"][name="file"]').set_input_files(
        {"name": "meal.png", "mimeType": "image/png", "buffer": png.getvalue()})
    stored = answer_json(tab.send(upload, 201))
    assert (stored["width"], stored["height"]) == (64, 48)  # stored as a JPEG: the PNG had no transparency

    fetch = tab.operation("GET", "/api/v1/uploads/{upload_id}")
    fetch.locator("label", has_text="upload_id").locator("input").fill(stored["id"])
    answer = tab.send(fetch, 200)
    assert f"bytes of {stored['content_type']}" in answer.inner_text()
    image = answer.locator("img")
    image.wait_for()
    assert image.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])") == [64, 48]
