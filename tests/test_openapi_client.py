"""A client generator pointed at /api/v1/openapi.json (issue 17, "Done when"): openapi-python-client
generates a Python client from the live server's document, with no warning about it, and the
generated package, imported, talks to the same server: signs up, reads the profile with its token,
chats (the reply's emotion), pages the sessions, uploads a photo and reads it back, imports and
exports records as CSV, and gets our error shape parsed for a wrong password."""

import importlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

import wellmate
from conftest import ROOT, Served, merge, shipped_config

PASSWORD = "client-password-7"



def generator_config() -> dict:
    """The generator's settings docs/api.md gives ("A generated client"; so they work as told): it
    reads a response only as JSON, text/* or application/octet-stream and sends a body only as
    JSON, a form or application/octet-stream, so our other media types (image/jpeg, image/png,
    text/csv, a library file's */*) are mapped onto bytes, its way for types it does not know."""
    section = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("## A generated client", 1)[1]
    snippet = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return {**yaml.safe_load(snippet), "project_name_override": "wellmate-client",
            "package_name_override": "wellmate_client"}


def serve(tmp, overrides=None) -> Served:
    (tmp / "plugins").mkdir()
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp), overrides or {}), allow_unicode=True), encoding="utf-8")
    return Served(wellmate.create_app(path))


def generate(served: Served, folder: Path) -> str:
    """Runs the generator on the served document into folder/wellmate_client; its output (stdout
    and stderr), after checking it finished."""
    config = folder / "generator.yaml"
    config.write_text(yaml.safe_dump(generator_config()), encoding="utf-8")
    # Its post-hooks run ruff (a dependency of the generator, installed next to this Python).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate",
                          "--url", f"{served.url}/api/v1/openapi.json", "--config", str(config),
                          "--meta", "none", "--output-path", str(folder / "wellmate_client")],
                         capture_output=True, text=True, env=env, cwd=folder, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "Generating" in output, output
    return output


def assert_no_warning(output: str):
    # Each complaint is a "WARNING parsing <operation>" (or "ERROR ...") paragraph quoting the part
    # of the document it could not use: a response or an endpoint it leaves out.
    assert "Warning(s) encountered" not in output and "WARNING" not in output and "ERROR" not in output, output


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    served = serve(tmp_path_factory.mktemp("client"))
    yield served
    served.stop()
    served.wm.close()


@pytest.fixture(scope="module")
def generated(site, tmp_path_factory):
    """The generator's output and the package it wrote, imported."""
    folder = tmp_path_factory.mktemp("generated")
    output = generate(site, folder)
    sys.path.insert(0, str(folder))
    try:
        yield output, importlib.import_module("wellmate_client")
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == "wellmate_client"]:
            del sys.modules[name]


def test_the_generator_reads_the_document_with_no_warning(generated):
    assert_no_warning(generated[0])


def test_it_reads_the_document_with_the_earlier_apps_dialects_on_too(tmp_path):
    served = serve(tmp_path, {"compat": {"medical": {"enabled": True}, "miniprogram": {"key": "m" * 32}}})
    try:
        assert "/api/user/login" in served.client.get("/api/v1/openapi.json").json["paths"]
        assert_no_warning(generate(served, tmp_path))
    finally:
        served.stop()
        served.wm.close()


def test_the_generated_client_signs_up_chats_pages_uploads_and_imports(site, generated):
    served = site
    _, package = generated
    from wellmate_client.api.accounts import profile, register
    from wellmate_client.api.chat import chat_reply, list_sessions
    from wellmate_client.api.records import export_csv, import_csv
    from wellmate_client.api.uploads import fetch, upload
    from wellmate_client.models import (ChatReply, ChatReplyBody, ImportCsvResponse200, ListSessionsResponse200,
                                        Profile, RegisterBody, SignedIn, Upload, UploadBody)
    from wellmate_client.types import File

    anonymous = package.Client(base_url=served.url, raise_on_unexpected_status=True)
    signed_in = register.sync(client=anonymous, body=RegisterBody(username="genclient", password=PASSWORD,
                                                                  full_name="Gen Client"))
    assert isinstance(signed_in, SignedIn), signed_in
    client = package.AuthenticatedClient(base_url=served.url, token=signed_in.access_token,
                                         raise_on_unexpected_status=True)

    me = profile.sync(client=client)
    assert isinstance(me, Profile) and me.uuid == signed_in.user.uuid and me.full_name == "Gen Client"

    reply = chat_reply.sync("physical", client=client, body=ChatReplyBody(text="最近睡不好, 很焦虑"))
    assert isinstance(reply, ChatReply), reply
    assert reply.content and reply.emotion and reply.agent == "physical"

    other = chat_reply.sync("physical", client=client, body=ChatReplyBody(text="今天走了八千步"))
    first = list_sessions.sync(client=client, limit=1)
    assert isinstance(first, ListSessionsResponse200) and first.next_, first
    second = list_sessions.sync(client=client, limit=1, before=first.next_)
    assert isinstance(second, ListSessionsResponse200) and second.next_ is None, second
    assert [s.id for s in first.items + second.items] == [other.session_id, reply.session_id]
    assert [s.message_count for s in first.items + second.items] == [2, 2]

    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 160, 90)).save(photo, "JPEG")
    stored = upload.sync(client=client, body=UploadBody(file=File(payload=io.BytesIO(photo.getvalue()),
                                                                  file_name="meal.jpg", mime_type="image/jpeg")))
    assert isinstance(stored, Upload), stored
    assert (stored.content_type.value, stored.width, stored.height) == ("image/jpeg", 64, 48)
    back = fetch.sync_detailed(stored.id, client=client)
    assert back.status_code == 200 and back.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(back.content)).size == (64, 48)

    rows = "type,value,unit,recorded_at,note\nweight,70.5,kg,2026-01-05T08:00:00+08:00,\n"
    counts = import_csv.sync(client=client, body=File(payload=io.BytesIO(rows.encode()), file_name="records.csv"))
    assert isinstance(counts, ImportCsvResponse200) and (counts.created, counts.unchanged) == (1, 0), counts
    exported = export_csv.sync(client=client).payload.read()
    assert "2026-01-05T00:00:00+00:00,weight,70.5,kg" in exported.decode("utf-8-sig")
    again = import_csv.sync(client=client, body=File(payload=io.BytesIO(exported)))
    assert isinstance(again, ImportCsvResponse200) and (again.created, again.unchanged) == (0, 1), again


def test_a_wrong_password_comes_back_as_the_typed_error(site, generated):
    served = site
    _, package = generated
    from wellmate_client.api.accounts import login, register
    from wellmate_client.models import Error, LoginBody, RegisterBody

    client = package.Client(base_url=served.url, raise_on_unexpected_status=True)
    register.sync(client=client, body=RegisterBody(username="wrongpw", password=PASSWORD))
    answer = login.sync_detailed(client=client, body=LoginBody(username="wrongpw", password="not-" + PASSWORD))
    assert answer.status_code == 401 and isinstance(answer.parsed, Error), answer
    assert answer.parsed.error.code and answer.parsed.error.message
